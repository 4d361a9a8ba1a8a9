"""collab.config"""
