"""collab.flows"""
