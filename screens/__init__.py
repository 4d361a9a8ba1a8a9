"""collab.screens"""
