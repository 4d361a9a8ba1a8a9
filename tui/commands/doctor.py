"""``collab doctor``: is the setup usable? Config, backend reachable, models usable (keys
set), terminal capabilities (colours, size, tmux escape-time, clipboard)."""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("doctor", help="check the setup: backend, models, terminal",
                            description="Check the config, the backend, the models and the terminal.")
    parser.add_argument("--no-start", action="store_true", help="do not start the embedded backend if it is down")
    parser.set_defaults(handler=run)


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def line(self, ok: bool | None, what: str, detail: str = "") -> None:
        mark = {True: "ok  ", False: "FAIL", None: "warn"}[ok]
        if ok is False:
            self.failures += 1
        print(f"[{mark}] {what}" + (f": {detail}" if detail else ""))


def run(args: argparse.Namespace) -> int:
    from collab.config import ConfigError, load_config

    r = Report()
    try:
        config = load_config(getattr(args, "config", None),
                             overrides={"backend.url": getattr(args, "url", None),
                                        "backend.data_dir": str(args.data_dir) if getattr(args, "data_dir", None) else None})
        r.line(True, "config", str(config.source_path or "defaults (no file yet)"))
    except ConfigError as exc:
        r.line(False, "config", str(exc))
        return 1
    _backend(r, config, start=not args.no_start)
    _models(r, config)
    _terminal(r)
    print("all good" if not r.failures else f"{r.failures} problem(s)")
    return 1 if r.failures else 0


def _backend(r: Report, config: "object", start: bool) -> None:
    from collab.config import Config

    assert isinstance(config, Config)
    if config.backend.url and config.backend.url != "embedded":
        url = config.backend.url
    else:
        from collab.tui.backend_launcher import BackendStartError, find_backend, start_backend
        from collab.config import resolve_paths

        found = find_backend(config.data_dir)
        if found is None and start:
            try:
                found = start_backend(config.data_dir, resolve_paths(data_dir_path=config.data_dir).log_dir)
            except BackendStartError as exc:
                r.line(False, "embedded backend", str(exc))
                return
        if found is None:
            r.line(False, "embedded backend", f"not running for {config.data_dir} (collab starts it)")
            return
        url = found.url
        r.line(True, "embedded backend", f"{url} (pid {found.pid}, data {config.data_dir})")
    import httpx

    try:
        resp = httpx.get(url.rstrip("/") + "/version", timeout=3)
        r.line(resp.status_code < 500, "backend reachable", f"{url} answered HTTP {resp.status_code}")
    except httpx.HTTPError as exc:
        r.line(False, "backend reachable", f"{url}: {exc}")


def _models(r: Report, config: "object") -> None:
    from collab.config import Config

    assert isinstance(config, Config)
    for agent in config.enabled_agents():
        spec = config.model_for(agent)
        problem = spec.missing_key()
        if problem:
            r.line(False, f"model of @{agent.handle}", problem)
        elif spec.model.startswith("local/"):
            problem = _local_model_problem(spec.model)
            r.line(problem is None, f"model of @{agent.handle}",
                   f"{spec.model} (offline)" + (f": {problem}" if problem else ""))
        else:
            r.line(True, f"model of @{agent.handle}", spec.model)


def _local_model_problem(model: str) -> str | None:
    """Why a ``local/...`` model cannot run here (with how to fix it), or None."""
    from collab.flows.local_model import LocalModelUnavailable, binding_available, find_weights

    if not binding_available():
        return "its runtime is not installed: pip install xllamacpp"
    try:
        find_weights(model)
    except LocalModelUnavailable as exc:
        return str(exc)
    return None


def _terminal(r: Report) -> None:
    term = os.environ.get("TERM", "")
    colorterm = os.environ.get("COLORTERM", "")
    size = shutil.get_terminal_size((0, 0))
    r.line(bool(term) and term != "dumb", "terminal", f"TERM={term or '(unset)'} COLORTERM={colorterm or '(unset)'}")
    colors = "truecolor" if colorterm in ("truecolor", "24bit") else "256 colours" if "256" in term else "basic"
    r.line(None if colors == "basic" else True, "colours", colors + (" (NO_COLOR set)" if "NO_COLOR" in os.environ else ""))
    if size.columns:
        r.line(size.columns >= 60 and size.lines >= 20 or None, "size",
               f"{size.columns}x{size.lines} (collab is laid out for 60x20 and up)")
    if os.environ.get("TMUX"):
        try:
            out = subprocess.run(["tmux", "show", "-sv", "escape-time"], capture_output=True, text=True, timeout=2)
            ms = int(out.stdout.strip() or "500")
            r.line(ms <= 25 or None, "tmux escape-time", f"{ms} ms" + ("" if ms <= 25 else
                   " (escape and alt keys arrive late: set -s escape-time 10 in ~/.tmux.conf)"))
            clip = subprocess.run(["tmux", "show", "-sv", "set-clipboard"], capture_output=True, text=True, timeout=2)
            val = clip.stdout.strip()
            r.line(val in ("on", "external") or None, "tmux clipboard (OSC 52)",
                   f"set-clipboard {val or '?'}" + ("" if val in ("on", "external") else " (set -s set-clipboard on)"))
        except (OSError, ValueError, subprocess.SubprocessError):
            r.line(None, "tmux", "could not read the tmux options")
    r.line(True, "clipboard", "OSC 52 (works over SSH when the terminal allows it)")
    tty = sys.stdout.isatty()
    r.line(tty or None, "terminal output",
           "stdout is a terminal" if tty else "stdout is not a terminal (the app needs one: run collab in a terminal)")
