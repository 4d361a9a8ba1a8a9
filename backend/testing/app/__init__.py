"""A small app for protocol, client and compatibility tests (not the collaboration model)."""
