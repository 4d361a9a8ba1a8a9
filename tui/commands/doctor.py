"""``collab doctor``: is the setup usable? Each line is a check that really ran, or says it was
not run and why:

- the config loads; the backend is found (or started) and answers;
- every model the enabled agents use: a missing key is a failure; the local model's weights
  are loaded for real (llama.cpp); a hosted model gets a one-token request with ``--online``
  (it costs a fraction of a cent, so never without asking), otherwise it is reported as not
  contacted;
- the terminal: colours, size, tmux options, and the clipboard, probed with an OSC 52 query
  (answered, not answered, or not a terminal at all: then it is unknown).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collab.config import Config, ModelSpec

Mark = Literal["ok", "fail", "warn", "skip"]
MARKS: dict[Mark, str] = {"ok": "ok  ", "fail": "FAIL", "warn": "warn", "skip": "skip"}


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("doctor", help="check the setup: backend, models, terminal",
                            description="Check the config, the backend, the models and the terminal. "
                                        "Hosted models are only contacted with --online.")
    parser.add_argument("--no-start", action="store_true", help="do not start the embedded backend if it is down")
    parser.add_argument("--online", action="store_true",
                        help="send each hosted model a one-token request (uses your keys; costs a fraction of a cent)")
    parser.set_defaults(handler=run)


class Report:
    def __init__(self) -> None:
        self.failures = 0

    def line(self, mark: Mark, what: str, detail: str = "") -> None:
        if mark == "fail":
            self.failures += 1
        print(f"[{MARKS[mark]}] {what}" + (f": {detail}" if detail else ""), flush=True)


def run(args: argparse.Namespace) -> int:
    from collab.config import ConfigError, load_config

    r = Report()
    try:
        config = load_config(getattr(args, "config", None),
                             overrides={"backend.url": getattr(args, "url", None),
                                        "backend.data_dir": str(args.data_dir) if getattr(args, "data_dir", None) else None})
        r.line("ok", "config", str(config.source_path or "defaults (no file yet)"))
    except ConfigError as exc:
        r.line("fail", "config", str(exc))
        return 1
    _backend(r, config, start=not args.no_start)
    _models(r, config, online=args.online)
    _terminal(r, config)
    print("all good" if not r.failures else f"{r.failures} problem(s)")
    return 1 if r.failures else 0


def _backend(r: Report, config: Config, start: bool) -> None:
    if config.backend.url and config.backend.url != "embedded":
        url = config.backend.url
    else:
        from collab.config import resolve_paths
        from collab.tui.backend_launcher import BackendStartError, find_backend, start_backend

        found = find_backend(config.data_dir)
        if found is None and start:
            try:
                found = start_backend(config.data_dir, resolve_paths(data_dir_path=config.data_dir).log_dir)
            except BackendStartError as exc:
                r.line("fail", "embedded backend", str(exc))
                return
        if found is None:
            r.line("fail", "embedded backend", f"not running for {config.data_dir} (collab starts it)")
            return
        url = found.url
        r.line("ok", "embedded backend", f"{url} (pid {found.pid}, data {config.data_dir})")
    import httpx

    try:
        resp = httpx.get(url.rstrip("/") + "/version", timeout=3)
        r.line("ok" if resp.status_code < 500 else "fail", "backend reachable", f"{url} answered HTTP {resp.status_code}")
    except httpx.HTTPError as exc:
        r.line("fail", "backend reachable", f"{url}: {exc}")


# ------------------------------------------------------------------ models


def _models(r: Report, config: Config, *, online: bool) -> None:
    """One check per distinct model, naming the agents that use it."""
    users: dict[str, list[str]] = {}
    specs: dict[str, ModelSpec] = {}
    for agent in config.enabled_agents():
        spec = config.model_for(agent)
        key = f"{spec.model} {spec.api_base or ''} {spec.key_env or ''}"
        users.setdefault(key, []).append(f"@{agent.handle}")
        specs[key] = spec
    for key, spec in specs.items():
        who = f"model of {' '.join(users[key])}"
        problem = spec.missing_key()
        if problem:
            r.line("fail", who, problem)
        elif spec.is_local:
            _local(r, who, spec.model)
        elif not online:
            r.line("skip", who, f"{spec.model}: key set, not contacted (--online sends a one-token request)")
        else:
            _hosted(r, who, spec, users[key][0].lstrip("@"))


def _local(r: Report, who: str, model: str) -> None:
    """Load the weights for real: a missing runtime, package or file, or a file llama.cpp
    cannot read, fails here instead of at the first reply."""
    try:
        from collab.flows.local_model import find_weights, preload

        path = find_weights(model)
        started = time.monotonic()
        preload(model)
    except Exception as exc:  # LocalModelUnavailable, ImportError, a llama.cpp load error
        r.line("fail", who, f"{model} (offline) does not load: {exc}")
        return
    size = path.stat().st_size / 1e6
    r.line("ok", who, f"{model} (offline) loaded in {time.monotonic() - started:.1f} s ({path.name}, {size:.0f} MB)")


def _hosted(r: Report, who: str, spec: ModelSpec, handle: str) -> None:
    """A one-token request through the same path as an agent's run (litellm, the key, the
    base URL): the provider answers, or its one-sentence error is the report."""
    from collab.flows.errors import LLMError
    from collab.flows.llm import stream_completion

    async def ask() -> str:
        text = ""
        async for chunk in stream_completion(
                spec.model, [{"role": "user", "content": "Reply with the single word OK."}],
                api_base=spec.api_base, api_key=spec.api_key(), api_key_env=spec.api_key_env, agent=handle,
                max_tokens=1, timeout=min(spec.timeout_s, 30.0), extra=spec.params or None):
            text += chunk.text
        return text

    started = time.monotonic()
    try:
        text = asyncio.run(ask())
    except LLMError as exc:
        r.line("fail", who, str(exc))
        return
    r.line("ok", who, f"{spec.model} answered {text.strip()[:20]!r} in {time.monotonic() - started:.1f} s")


# ------------------------------------------------------------------ terminal


def _terminal(r: Report, config: Config) -> None:
    term = os.environ.get("TERM", "")
    colorterm = os.environ.get("COLORTERM", "")
    size = shutil.get_terminal_size((0, 0))
    r.line("ok" if term and term != "dumb" else "warn", "terminal",
           f"TERM={term or '(unset)'} COLORTERM={colorterm or '(unset)'}")
    colors = "truecolor" if colorterm in ("truecolor", "24bit") else "256 colours" if "256" in term else "basic"
    r.line("warn" if colors == "basic" else "ok", "colours", colors + (" (NO_COLOR set)" if "NO_COLOR" in os.environ else ""))
    if size.columns:
        r.line("ok" if size.columns >= 60 and size.lines >= 20 else "warn", "size",
               f"{size.columns}x{size.lines} (collab is laid out for 60x20 and up)")
    if os.environ.get("TMUX"):
        _tmux(r)
    _clipboard(r, config)
    tty = sys.stdout.isatty()
    r.line("ok" if tty else "warn", "terminal output",
           "stdout is a terminal" if tty else "stdout is not a terminal (the app needs one: run collab in a terminal)")


def _tmux(r: Report) -> None:
    try:
        out = subprocess.run(["tmux", "show", "-sv", "escape-time"], capture_output=True, text=True, timeout=2)
        ms = int(out.stdout.strip() or "500")
        r.line("ok" if ms <= 25 else "warn", "tmux escape-time", f"{ms} ms" + ("" if ms <= 25 else
               " (escape and alt keys arrive late: set -s escape-time 10 in ~/.tmux.conf)"))
        clip = subprocess.run(["tmux", "show", "-sv", "set-clipboard"], capture_output=True, text=True, timeout=2)
        val = clip.stdout.strip()
        r.line("ok" if val in ("on", "external") else "warn", "tmux clipboard (OSC 52)",
               f"set-clipboard {val or '?'}" + ("" if val in ("on", "external") else " (set -s set-clipboard on)"))
    except (OSError, ValueError, subprocess.SubprocessError):
        r.line("warn", "tmux", "could not read the tmux options")


OSC52_QUERY = b"\x1b]52;c;?\x07"
# Primary device attributes: every terminal answers it, so its answer marks the end of what
# the terminal had to say (no fixed wait decides that the OSC 52 query went unanswered).
DA1_QUERY = b"\x1b[c"


def _clipboard(r: Report, config: Config) -> None:
    if config.ui.clipboard == "off":
        r.line("ok", "clipboard", 'off (ui.clipboard = "off"): the app copies nothing')
        return
    answer = probe_osc52()
    if answer is None:
        r.line("warn", "clipboard", "unknown: not run in a terminal, so OSC 52 could not be probed")
    elif answer == "answered":
        r.line("ok", "clipboard", "OSC 52: the terminal answered a clipboard query")
    elif answer == "silent":
        r.line("warn", "clipboard", "unknown: the terminal did not answer an OSC 52 query (many allow copying "
                                    "but not reading; try y in the app, and see your terminal's OSC 52 setting)")
    else:
        r.line("warn", "clipboard", "unknown: the terminal answered nothing at all (not even a device query)")


def probe_osc52(timeout_s: float = 2.0, clock: Callable[[], float] = time.monotonic) -> str | None:
    """Ask the terminal on stdin/stdout for its clipboard (OSC 52 query), then for its device
    attributes. ``"answered"``: an OSC 52 reply came first; ``"silent"``: only the device
    attributes came back; ``"mute"``: nothing within ``timeout_s``; None: not a terminal."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    import termios
    import tty

    fd_in, fd_out = sys.stdin.fileno(), sys.stdout.fileno()
    saved = termios.tcgetattr(fd_in)
    got = b""
    try:
        tty.setraw(fd_in)
        sys.stdout.flush()
        os.write(fd_out, OSC52_QUERY + DA1_QUERY)
        deadline = clock() + timeout_s
        while b"\x1b]52;" not in got and not _has_da1(got):
            left = deadline - clock()
            if left <= 0 or not select.select([fd_in], [], [], left)[0]:
                break
            got += os.read(fd_in, 1024)
        if b"\x1b]52;" in got:
            # let the device-attributes answer arrive too, so it does not leak into the shell
            while not _has_da1(got) and select.select([fd_in], [], [], 0.2)[0]:
                got += os.read(fd_in, 1024)
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
    if b"\x1b]52;" in got:
        return "answered"
    return "silent" if _has_da1(got) else "mute"


def _has_da1(data: bytes) -> bool:
    """A device attributes answer: ESC [ ? <params> c."""
    start = data.find(b"\x1b[?")
    return start >= 0 and b"c" in data[start + 3:]
