"""collab.widgets"""
