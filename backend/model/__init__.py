"""The collaboration data model: spaces, actors, artifacts, versions, fenced leased locks,
drafts, messages, presence, runs, notifications and audit, as backend functions.

Each module registers as ``<module>:<fn>`` (``locks.py`` -> ``locks:acquire``). Modules whose
name starts with ``_`` hold shared helpers and register nothing. Every public function is
declared through :mod:`._auth`, which resolves the caller and checks the space role before the
handler runs (see docs/API.md for the published API).
"""
