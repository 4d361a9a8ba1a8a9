"""collab.backend"""
