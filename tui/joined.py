"""Backends this user joined with an invite code (``collab join``), kept in the config dir.

``$XDG_CONFIG_HOME/collab/joined/`` (mode 0700) holds, per backend, the token the code was
exchanged for (``<key>.jwt``, 0600), the pinned certificate of a self-signed TLS backend
(``<key>.pem``) and ``joined.json`` (0600): which backends, with which handle and space, and
which one plain ``collab`` opens (the last joined). No Textual here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DIR = "joined"
INDEX = "joined.json"


@dataclass
class Joined:
    url: str
    handle: str
    space: str
    space_id: str
    role: str
    token_file: str
    ca_file: str | None = None  # the pinned certificate (self-signed TLS)

    def token(self) -> str | None:
        try:
            return Path(self.token_file).read_text().strip() or None
        except OSError:
            return None

    def ssl_context(self) -> ssl.SSLContext | None:
        return pinned_context(Path(self.ca_file).read_text()) if self.ca_file else None


def pinned_context(cert_pem: str) -> ssl.SSLContext:
    """Trust exactly this (self-signed) certificate. The pin was checked when it was stored, so
    the host name adds nothing: only the holder of its key can present it."""
    ctx = ssl.create_default_context(cadata=cert_pem)
    ctx.check_hostname = False
    return ctx


def key_of(url: str) -> str:
    """A file-name-safe key per backend URL."""
    return re.sub(r"[^a-z0-9]+", "-", url.lower().split("://", 1)[-1]).strip("-")[:60] + "-" + \
        hashlib.sha256(url.encode()).hexdigest()[:8]


def folder(config_dir: Path) -> Path:
    return config_dir / DIR


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def _index(config_dir: Path) -> dict[str, Any]:
    try:
        raw = json.loads((folder(config_dir) / INDEX).read_text())
        return raw if isinstance(raw, dict) else {}
    except (OSError, ValueError):
        return {}


def save(config_dir: Path, *, url: str, token: str, handle: str, space: str, space_id: str, role: str,
         cert_pem: str | None = None) -> Joined:
    """Store a join (and make it the backend plain ``collab`` opens)."""
    where = folder(config_dir)
    where.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(where, 0o700)
    key = key_of(url)
    token_file = where / f"{key}.jwt"
    _write_private(token_file, token)
    ca_file = None
    if cert_pem is not None:
        ca_file = where / f"{key}.pem"
        _write_private(ca_file, cert_pem)
    joined = Joined(url=url, handle=handle, space=space, space_id=space_id, role=role, token_file=str(token_file),
                    ca_file=str(ca_file) if ca_file else None)
    index = _index(config_dir)
    index.setdefault("backends", {})[key] = asdict(joined)
    index["default"] = key
    _write_private(where / INDEX, json.dumps(index, indent=2) + "\n")
    return joined


def find(config_dir: Path, url: str) -> Joined | None:
    entry = _index(config_dir).get("backends", {}).get(key_of(url.rstrip("/")))
    return _joined(entry)


def default(config_dir: Path) -> Joined | None:
    index = _index(config_dir)
    return _joined(index.get("backends", {}).get(index.get("default", "")))


def _joined(entry: Any) -> Joined | None:
    if not isinstance(entry, dict):
        return None
    try:
        return Joined(**{k: entry[k] for k in Joined.__dataclass_fields__ if k in entry})
    except TypeError:
        return None
