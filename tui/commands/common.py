"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def default_data_dir() -> Path:
    """``--data-dir`` default: COLLAB_DATA_DIR, else $XDG_DATA_HOME/collab (see config.paths)."""
    env = os.environ.get("COLLAB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "collab"


def data_dir_of(args: argparse.Namespace) -> Path:
    return (getattr(args, "data_dir", None) or default_data_dir()).expanduser()


def add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS,
                        help="data directory (default: $XDG_DATA_HOME/collab; env COLLAB_DATA_DIR)")
