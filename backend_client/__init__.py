"""collab.backend_client"""
