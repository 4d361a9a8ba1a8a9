"""Panes of the space screen: each owns its live queries, keys and actions."""
