"""First run: write a commented default config the user can read and edit.

tomli-w writes the data but no comments, so the text is assembled section by section: a comment
block explaining the section, then the section's data as tomli-w renders it, each key preceded
by its description (taken from the model's field). Values that are unset by default (the
backend URL, your handle) and the keymap are written as commented-out lines, so a default that
changes in a later version still reaches users who never touched it. The result loads back to
exactly the defaults (a test checks it).
"""

from __future__ import annotations

import os
import re
import tempfile
import textwrap
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import BaseModel

from .agents import AgentConfig
from .backend import BackendConfig
from .flows.model import FlowConfig, StageConfig
from .identity import IdentityConfig, handle_from_login, login_name
from .keymap import BINDINGS
from .llm import ModelSpec, ModelsConfig
from .budget import BudgetConfig
from .locks import LocksConfig
from .models import Config
from .paths import config_file, data_dir
from .streaming import StreamingConfig
from .theme import ThemeConfig
from .ui import UIConfig

WIDTH = 99

HEADER = """\
# collab configuration.
#
# Written on first run with the built-in defaults; edit freely. Delete a key (or this whole
# file) to get its default back. Unknown keys are errors, so a typo never passes silently.
#
# Precedence: built-in defaults < this file < COLLAB_* environment variables < command-line
# flags. `collab locate` prints every path collab uses; docs/CONFIG.md describes every key.
"""

SECTION_DOCS: dict[str, str] = {
    "backend": (
        "Which backend holds your spaces. Unset url: the embedded backend (SQLite in data_dir), "
        "started in the background and shared by every collab on this machine using the same "
        "data dir (tmux panes, SSH logins). Set url to use a Convex deployment instead."
    ),
    "identity": (
        "Who you are in every space. Others see your display name and @mention your handle."
    ),
    "models": (
        "LLM models by alias. All calls go through litellm, so `model` is any litellm model name. "
        "API keys never go here: `api_key_env` names the environment variable that holds the "
        'key. "local" is a small offline model that needs no key and no network. An alias '
        "written here replaces the built-in one of that name wholly."
    ),
    "agents": (
        "The agents that join your spaces (at most 5 enabled). An [[agents]] entry with the "
        "handle of a built-in agent changes only the keys it sets; a new handle adds an agent; "
        "enabled = false leaves one out. `model` names an alias from [models] (unset: "
        "models.default)."
    ),
    "flows": (
        "Flows combine agents with a view: discussion, variations or pipeline. The presets "
        "research, writing, creative_writing, review and coding ship with collab; a "
        "[flows.<name>] table adds a flow, or changes the keys it sets in a preset of that name."
    ),
    "streaming": (
        "How often a streaming reply is flushed: ui_* to the terminal that shows it, persist_* "
        "to the backend everyone else watches. persist_interval_ms must be at least 2x "
        "ui_interval_ms (and >= 50): it bounds backend writes per stream, whatever the token "
        "rate."
    ),
    "locks": (
        "Leases on artifact locks: a crashed holder frees its lock within lease_ttl_s plus one "
        "sweep. renew_every_s must be <= lease_ttl_s / 2."
    ),
    "keymap": (
        'Key bindings by id: "<binding id>" = "<keys>". Several keys: "f1,f2" or ["f1", "f2"]; '
        '"" unbinds. ctrl+a / ctrl+b (tmux, screen prefixes) and keys terminals do not deliver '
        "(ctrl+enter, shift+enter...) are refused. Uncomment a line to change it; the list shows "
        "the defaults."
    ),
    "theme": (
        'name is "dark", "light" or any Textual theme name; app.toggle_theme switches between '
        "the dark and light themes named here. NO_COLOR is honoured whatever the theme."
    ),
    "ui": "How the app behaves in your terminal.",
    "budget": (
        "What agent runs may cost per space you own (USD, over the space's life). Runs past it are "
        "refused before they start, for every client."
    ),
}

# Which model describes the keys under each table header, for the per-key comments.
_TABLE_MODELS: dict[str, type[BaseModel]] = {
    "backend": BackendConfig,
    "identity": IdentityConfig,
    "models": ModelsConfig,
    "models.aliases": ModelSpec,
    "agents": AgentConfig,
    "streaming": StreamingConfig,
    "locks": LocksConfig,
    "budget": BudgetConfig,
    "theme": ThemeConfig,
    "ui": UIConfig,
}


def _comment(text: str, indent: str = "") -> str:
    return "\n".join(
        textwrap.wrap(text, WIDTH - len(indent) - 2, initial_indent=indent + "# ",
                      subsequent_indent=indent + "# ")
    )


def _describe_keys(rendered: str, model: type[BaseModel], described: set[str]) -> str:
    """Put each key's field description above it (once per key name)."""
    out: list[str] = []
    for line in rendered.splitlines():
        m = re.match(r"^(#\s*)?([A-Za-z_]+) = ", line)
        if m and m.group(2) in model.model_fields and m.group(2) not in described:
            desc = model.model_fields[m.group(2)].description
            if desc:
                out.append(_comment(desc))
            described.add(m.group(2))
        out.append(line)
    return "\n".join(out)


def _commented(text: str) -> str:
    return "\n".join(f"# {ln}" if ln else "#" for ln in text.rstrip("\n").splitlines())


def _dump(table: Mapping[str, Any]) -> str:
    return tomli_w.dumps(dict(table), multiline_strings=True)


def _dump_wrapped(table: Mapping[str, Any]) -> str:
    """Like ``_dump``, but long one-line strings (personas) are written as multi-line strings
    with line-ending backslashes, which TOML joins back into the same one-line value."""
    out = []
    for key, value in table.items():
        line = _dump({key: value})
        if isinstance(value, str) and len(line) > WIDTH:
            line = _wrapped_string(key, value) or line
        out.append(line)
    return "".join(out)


def _wrapped_string(key: str, value: str) -> str | None:
    if any(c in value for c in '"\\\n\t') or "  " in value or value != value.strip():
        return None
    rows = textwrap.wrap(value, WIDTH - 4, break_long_words=False, break_on_hyphens=False)
    text = f'{key} = """\\\n' + "".join(f"  {r} \\\n" for r in rows[:-1])
    text += f'  {rows[-1]}"""\n'
    try:  # only if TOML reads back exactly the same string
        ok = tomllib.loads(text)[key] == value
    except tomllib.TOMLDecodeError:
        ok = False
    return text if ok else None


def _plain(model: BaseModel, **kw: Any) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True, **kw)


def default_config_text(env: Mapping[str, str] | None = None) -> str:
    """The commented default config, as first run writes it."""
    e = os.environ if env is None else env
    cfg = Config()
    parts: list[str] = [HEADER]

    def section(name: str, body: str) -> None:
        parts.append(_comment(SECTION_DOCS[name]) + "\n" + body.rstrip("\n") + "\n")

    # backend: url and data_dir are unset by default, shown as examples.
    body = "[backend]\n" + _commented(
        _dump({"url": "https://happy-otter-123.convex.cloud"})
        + _dump({"data_dir": str(data_dir(e))})
    ) + "\n" + _dump(_plain(cfg.backend))
    section("backend", _describe_keys(body, BackendConfig, set()))

    login = login_name(e)
    body = "[identity]\n" + _commented(
        _dump({"handle": handle_from_login(login), "display_name": login.title()})
    )
    section("identity", _describe_keys(body, IdentityConfig, set()))

    described: set[str] = set()
    body = _describe_keys(_dump({"default": cfg.models.default}), ModelsConfig, set())
    body = "[models]\n" + body
    for alias, spec in cfg.models.aliases.items():
        sub = f"\n\n[models.aliases.{alias}]\n" + _dump(_plain(spec, exclude_defaults=True))
        body += _describe_keys(sub, ModelSpec, described)
    section("models", body)

    described = set()
    blocks = []
    for n, agent in enumerate(cfg.agents):
        text = "[[agents]]\n" + _dump_wrapped(_plain(agent))
        if n == 0:  # show the key once; unset means models.default, which is what we want
            text += '# model = "fast"\n'
        blocks.append(_describe_keys(text, AgentConfig, described))
    section("agents", "\n\n".join(blocks))

    example = FlowConfig(
        title="Brainstorm",
        description="Many ideas fast, then a skeptic's cut",
        view="discussion",
        agents=["dara", "quinn"],
        instructions="Propose many short ideas; Quinn keeps the three strongest.",
    )
    pipeline = FlowConfig(
        title="Spec review",
        view="pipeline",
        stages=[
            StageConfig(name="draft", actor="human"),
            StageConfig(name="review", actor="quinn", approver="human"),
        ],
    )
    body = (
        "# A flow of your own:\n"
        + _commented(_dump({"flows": {"brainstorm": _plain(example, exclude_defaults=True)}}))
        + "\n#\n# A pipeline: stage actors are agent handles, \"human\" or \"human:<handle>\".\n"
        + _commented(_dump({"flows": {"spec_review": _plain(pipeline, exclude_defaults=True)}}))
        + "\n#\n# Hide a preset from the flow picker:\n"
        + _commented(_dump({"flows": {"coding": {"hidden": True}}}))
    )
    section("flows", body)

    body = (
        _dump({"streaming": _plain(cfg.streaming)})
        + _commented(_dump({"ui_max_chars": 16, "persist_max_chars": 256}))
        + "\n#\n# On a Convex deployment every call is billed (docs/CONVEX.md \"Cost\"): a cheaper profile\n"
        + _commented(_dump({"streaming": {"convex": {"ui_lane": False, "persist_interval_ms": 1000}}}))
    )
    section("streaming", _describe_keys(body, StreamingConfig, set()))

    section("locks", _describe_keys(_dump({"locks": _plain(cfg.locks)}), LocksConfig, set()))
    section("budget", _describe_keys("[budget]\n" + _commented(_dump({"usd": 5.0})) + "\n# spaces = { main = 2.0 }\n",
                                     BudgetConfig, set()))

    width = 40
    lines = ["[keymap]"]
    scope = ""
    for b in BINDINGS:
        if b.scope != scope:
            scope = b.scope
            lines.append(f"# -- {scope}")
        entry = _dump({b.id: b.default}).strip()
        lines.append(f"# {entry.ljust(width)}  # {b.description}")
    section("keymap", "\n".join(lines))

    section("theme", _describe_keys(_dump({"theme": _plain(cfg.theme)}), ThemeConfig, set()))
    section("ui", _describe_keys(_dump({"ui": _plain(cfg.ui)}), UIConfig, set()))
    return "\n".join(parts)


def write_default_config(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Path | None:
    """Write the commented default config to ``path`` (default: the config file path) unless a
    file is already there. Returns the path written, or None if one existed.

    Never overwrites: the text goes to a temporary file that is hard-linked into place, which
    fails if the file exists, so two collab processes starting at once cannot clobber each
    other (or a file the user just wrote), and nobody reads a half-written file.
    """
    target = Path(path) if path is not None else config_file(env)
    if target.exists():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    text = default_config_text(env)
    fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return None
        except OSError:  # no hard links on this filesystem: exclusive create instead
            try:
                with open(target, "x", encoding="utf-8") as f:
                    f.write(text)
            except FileExistsError:
                return None
    finally:
        os.unlink(tmp)
    return target
