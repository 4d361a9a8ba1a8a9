"""collab.tui"""
