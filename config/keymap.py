"""Key bindings: every action has a stable id (``artifact.edit``) and a default key.

The TUI declares its Textual ``Binding``s with ``id=<binding id>`` and applies the user's map
with ``App.set_keymap(config.keymap)`` (the same scheme as posting). This module holds the
catalogue of ids, the defaults, and the rules a key must follow to reach the app at all:

* tmux and screen take ``ctrl+b`` / ``ctrl+a`` as their prefix key, so the app never sees them
  (allowed only with ``ui.allow_multiplexer_keys = true``, for people who use neither);
* terminals do not deliver some combinations (``ctrl+enter``, ``shift+enter``, ``ctrl+1``...),
  or deliver them as another key (``ctrl+i`` is ``tab``, ``ctrl+m`` is ``enter``); a binding to
  one of them would silently never fire, so it is rejected with the reason.

Key syntax is Textual's: modifiers ``alt ctrl meta shift super hyper`` joined with ``+``
(stored sorted, as Textual reports them), then a key name (``a``, ``enter``, ``f5``,
``question_mark``) or a single character (``?`` is stored as ``question_mark``). Several keys
for one action are comma separated (``"f1,question_mark"``) or a TOML array. An empty string
unbinds the action.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import Key


@dataclass(frozen=True)
class BindingSpec:
    """One remappable action."""

    id: str
    default: str
    description: str
    # Global bindings marked priority fire even when a text field has focus (Textual
    # ``priority=True``), so no other binding may reuse their key.
    priority: bool = False

    @property
    def scope(self) -> str:
        """The focus context the binding lives in: the id's first part (``app``, ``editor``...).
        Keys must be unique within a scope; ``app`` bindings are global."""
        return self.id.split(".", 1)[0]


def _b(id: str, default: str, description: str, priority: bool = False) -> BindingSpec:
    return BindingSpec(id, default, description, priority)


# Defaults avoid ctrl+a/ctrl+b (multiplexer prefixes), the TextArea's own editing keys in the
# editor and composer scopes (ctrl+a/e/w/d/x/c/v/u/k/z/y), and keys terminals do not deliver.
BINDINGS: tuple[BindingSpec, ...] = (
    # app: global
    _b("app.quit", "ctrl+q", "Quit collab (the background backend keeps running)", priority=True),
    _b("app.command_palette", "ctrl+p", "Open the command palette", priority=True),
    _b("app.help", "f1", "Show the keys of the focused pane"),
    _b("app.back", "escape", "Close the dialog or go back one screen"),
    _b("app.toggle_theme", "ctrl+t", "Switch between the dark and the light theme"),
    _b("app.notifications", "ctrl+n", "Show notifications (mentions, locks granted)"),
    _b("app.switch_space", "ctrl+o", "Open another space"),
    _b("app.redraw", "ctrl+l", "Redraw the screen"),
    _b("app.members", "f5", "Members, roles, invites, what the agents do and cost"),
    # space screen: move between panes (F-keys as a fallback where alt is not a meta key)
    _b("space.focus_tree", "alt+1,f2", "Focus the artifact tree"),
    _b("space.focus_document", "alt+2,f3", "Focus the document view"),
    _b("space.focus_discussion", "alt+3,f4", "Focus the discussion"),
    # artifact: the tree and the document view
    _b("artifact.new", "n", "Create an artifact"),
    _b("artifact.edit", "e", "Lock the artifact and edit it"),
    _b("artifact.wait_lock", "w", "Wait in the lock queue (pressed again: leave it)"),
    _b("artifact.force_unlock", "U", "Force the lock open (owners; asks for a reason)"),
    _b("artifact.history", "h", "Version history and diffs"),
    _b("artifact.rename", "r", "Rename the artifact"),
    _b("artifact.tag", "t", "Edit tags"),
    _b("artifact.delete", "delete", "Delete the artifact (asks first)"),
    _b("artifact.copy", "y", "Copy the content to the clipboard (OSC 52)"),
    _b("artifact.export", "x", "Export the artifact to a file"),
    _b("artifact.discuss", "d", "Discuss this artifact"),
    _b("artifact.variations", "v", "Generate variations of this artifact"),
    _b("artifact.pipeline", "p", "Send this artifact through a review pipeline"),
    _b("artifact.flow", "f", "Run a flow on this artifact"),
    # editor: the edit cycle (lock held)
    _b("editor.save", "ctrl+s", "Save a new version and release the lock"),
    _b("editor.cancel", "escape", "Stop editing and release the lock (the draft is kept)"),
    _b("editor.external", "ctrl+r", "Continue in $EDITOR"),
    # discussion: the composer and the message log
    _b("discussion.send", "enter", "Send the message"),
    _b("discussion.newline", "ctrl+j,alt+enter", "New line in the message"),
    _b("discussion.cancel_runs", "ctrl+g", "Stop the agents replying"),
    _b("discussion.reply", "r", "Reply quoting the selected message"),
    _b("discussion.mark_decision", "D", "Mark the selected message as a decision"),
    _b("discussion.copy", "y", "Copy the selected message"),
    _b("discussion.export", "x", "Export the discussion to a file"),
    _b("discussion.toggle_sidebar", "s", "Show or hide decisions and open questions"),
    # variations
    _b("variations.star", "s", "Star or unstar: the shortlist"),
    _b("variations.pick", "p", "Make this variation the artifact's next version"),
    _b("variations.compose", "c", "Compose: merge parts of several variations"),
    _b("variations.more", "m", "Start the next round from the shortlist"),
    _b("variations.diff", "d", "Diff two variations"),
    _b("variations.next", "right,l", "Next variation"),
    _b("variations.previous", "left,h", "Previous variation"),
    _b("variations.next_round", "right_square_bracket", "Next round"),
    _b("variations.previous_round", "left_square_bracket", "Previous round"),
    _b("variations.more_columns", "plus", "More columns"),
    _b("variations.fewer_columns", "minus", "Fewer columns"),
    _b("variations.cancel", "ctrl+g", "Stop the running variations"),
    _b("variations.cancel_one", "x", "Stop the focused variation"),
    _b("variations.new", "n", "Start a new round (asks for the instruction)"),
    _b("variations.rounds", "r", "Browse the rounds of this artifact"),
    _b("variations.sync_scroll", "z", "Scroll the columns together or apart"),
    _b("variations.select", "space", "Compose: start or end a selection of lines"),
    _b("variations.add_part", "a", "Compose: add the selected lines to the tray"),
    _b("variations.part_up", "K,shift+up", "Compose tray: move the part up"),
    _b("variations.part_down", "J,shift+down", "Compose tray: move the part down"),
    _b("variations.part_remove", "delete,backspace", "Compose tray: remove the part"),
    # pipeline
    _b("pipeline.start", "s", "Start a pipeline on this artifact (pick a flow)"),
    _b("pipeline.approve", "a", "Approve the stage output and hand it on"),
    _b("pipeline.reject", "r", "Reject with a reason: back to the stage's actor"),
    _b("pipeline.diff", "d", "Diff the stage output against its input"),
    _b("pipeline.cancel", "ctrl+g", "Cancel the pipeline (owners, or who started it)"),
    _b("pipeline.retry", "R", "Retry the failed stage (or its review)"),
    _b("pipeline.work", "e", "Your stage: take the lock and write its output"),
    # history
    _b("history.diff", "d", "Diff the two marked versions"),
    _b("history.mark", "space", "Mark a version for the diff"),
    _b("history.restore", "r", "Restore this version (as a new version)"),
    # members screen (owners: the actions; everyone: the list)
    _b("members.invite", "i", "Create an invite and show the line to send (owners)"),
    _b("members.role", "r", "Change the selected member's role (owners)"),
    _b("members.remove", "x", "Remove the selected member from the space (owners)"),
    _b("members.revoke", "v", "Revoke the selected invite (owners)"),
    _b("members.force_release", "u", "Force open a member's lock (owners)"),
)

BINDINGS_BY_ID: dict[str, BindingSpec] = {b.id: b for b in BINDINGS}
DEFAULT_KEYMAP: dict[str, str] = {b.id: b.default for b in BINDINGS}

MODIFIERS = ("alt", "ctrl", "hyper", "meta", "shift", "super")
MULTIPLEXER_KEYS: dict[str, str] = {
    "ctrl+b": "the tmux prefix key",
    "ctrl+a": "the GNU screen prefix key (and a common tmux prefix)",
}
NAMED_KEYS = frozenset(
    "escape enter tab space backspace delete insert home end pageup pagedown up down left right"
    .split()
    + [f"f{n}" for n in range(1, 25)]
)
# What a terminal really sends for these, so the binding could never fire as written.
_ALIASED = {
    "ctrl+i": "tab",
    "ctrl+m": "enter",
    "ctrl+left_square_bracket": "escape",
    "ctrl+h": "backspace (in most terminals)",
    "ctrl+space": "ctrl+at (NUL)",
}
_NOT_DELIVERED_BASES = {"enter", "space", "backspace", "escape", "tab"}
_CTRL_PUNCTUATION_OK = {
    "backslash",
    "right_square_bracket",
    "underscore",
    "circumflex_accent",
    "at",
}
_KEY_NAME_REPLACEMENTS = {  # as textual.keys.KEY_NAME_REPLACEMENTS
    "solidus": "slash",
    "reverse_solidus": "backslash",
    "commercial_at": "at",
    "hyphen_minus": "minus",
    "plus_sign": "plus",
    "low_line": "underscore",
}


def character_to_key(char: str) -> str:
    """A typed character -> Textual's key name (``?`` -> ``question_mark``)."""
    if char.isalnum():
        return char
    if char == "\t":
        return "tab"
    try:
        name = unicodedata.name(char).lower().replace("-", "_").replace(" ", "_")
    except ValueError:
        return char
    return _KEY_NAME_REPLACEMENTS.get(name, name)


class KeyProblem(ValueError):
    """A key the app would never receive, or that is written wrong."""


def normalize_key(key: str) -> str:
    """One key as written -> Textual's canonical form; raise ``KeyProblem`` if it cannot work."""
    text = key.strip()
    if not text:
        raise KeyProblem("empty key")
    if text == "+":
        return "plus"
    parts = text.split("+")
    if text.endswith("++"):  # "ctrl++": the key itself is "+"
        parts = parts[:-2] + ["+"]
    *mods, base = parts
    mods_l = [m.strip().lower() for m in mods]
    for m in mods_l:
        if m not in MODIFIERS:
            raise KeyProblem(f"unknown modifier {m!r} in {key!r} (use {', '.join(MODIFIERS)})")
    if len(set(mods_l)) != len(mods_l):
        raise KeyProblem(f"repeated modifier in {key!r}")
    base = base.strip()
    if len(base) == 1:
        base = character_to_key(base)
    elif base.lower() in NAMED_KEYS or base.lower() == "return":
        base = "enter" if base.lower() == "return" else base.lower()
    if len(base) > 1 and not (base in NAMED_KEYS or base.replace("_", "").isalpha()):
        raise KeyProblem(f"unknown key {base!r} in {key!r}")
    if mods_l and len(base) == 1 and base.isalpha():
        base = base.lower()  # "ctrl+S" is "ctrl+s"; shift is spelled out
    return "+".join(sorted(mods_l) + [base])


def key_problem(key: str, *, allow_multiplexer_keys: bool = False) -> str | None:
    """Why a normalized key cannot be bound, or None. Messages say what to do instead."""
    if key in MULTIPLEXER_KEYS and not allow_multiplexer_keys:
        return (
            f"{key} is {MULTIPLEXER_KEYS[key]}, so collab would never see it; pick another key "
            "(or set ui.allow_multiplexer_keys = true if you use neither tmux nor screen)"
        )
    if key in _ALIASED:
        return f"{key} reaches the app as {_ALIASED[key]}; bind that instead"
    *mods, base = key.split("+")
    if mods and base in _NOT_DELIVERED_BASES and mods != ["alt"] and key != "shift+tab":
        hint = " (use ctrl+j or alt+enter for a second enter-like key)" if base == "enter" else ""
        return f"{key} is not delivered by most terminals, and never inside tmux{hint}"
    if "ctrl" in mods and "shift" in mods and len(base) == 1:
        return f"{key}: terminals send ctrl+shift+<key> as ctrl+<key>; use another modifier"
    if "ctrl" in mods and len(base) == 1 and base.isdigit():
        return f"{key}: terminals do not send ctrl with a digit; use alt+{base} or a letter"
    if "ctrl" in mods and len(base) > 1 and base not in NAMED_KEYS:
        if base not in _CTRL_PUNCTUATION_OK:
            return f"{key}: terminals do not send ctrl with {base}; pick a letter or a named key"
    if "shift" in mods and len(base) == 1 and base.isalpha() and mods == ["shift"]:
        return f"{key}: write the capital letter instead ({base.upper()!r})"
    return None


def parse_keys(value: Any) -> list[str]:
    """A binding's value (``"f1,?"`` or ``["f1", "?"]``) -> list of raw keys."""
    if isinstance(value, str):
        if not value.strip():
            return []
        # A lone "," is the comma key, not a separator.
        return [k for k in value.split(",") if k.strip()] if value.strip() != "," else [","]
    if isinstance(value, list) and all(isinstance(k, str) for k in value):
        return [k for k in value if k.strip()]
    raise KeyProblem("must be a key string like \"ctrl+s\", keys joined by commas, or an array")


def flatten_keymap(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"artifact": {"edit": "e"}}`` -> ``{"artifact.edit": "e"}``.

    TOML reads the unquoted key ``artifact.edit = "e"`` as a nested table, so both spellings
    (quoted and dotted) must mean the same binding id.
    """
    flat: dict[str, Any] = {}
    for k, v in data.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            flat.update(flatten_keymap(v, name + "."))
        else:
            flat[name] = v
    return flat


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def validate_keymap(
    raw: Mapping[str, Any], *, allow_multiplexer_keys: bool = False
) -> tuple[dict[str, str], list[tuple[Key, str]]]:
    """Merge ``raw`` over the defaults and check it.

    Returns the full keymap (every id, values in canonical comma-separated form) and the
    problems as ``(binding id,), message``.
    """
    problems: list[tuple[Key, str]] = []
    result: dict[str, str] = {}
    user = flatten_keymap(raw)
    for bid, value in user.items():
        if bid not in BINDINGS_BY_ID:
            hint = suggest(bid, list(DEFAULT_KEYMAP))
            problems.append(((bid,), f"unknown binding id {bid!r}{hint}"))
    for spec in BINDINGS:
        value = user.get(spec.id, spec.default)
        try:
            keys = [normalize_key(k) for k in parse_keys(value)]
        except KeyProblem as exc:
            problems.append(((spec.id,), str(exc)))
            continue
        found = (key_problem(k, allow_multiplexer_keys=allow_multiplexer_keys) for k in keys)
        bad = [p for p in found if p]
        if bad:
            problems.extend(((spec.id,), p) for p in bad)
            continue
        result[spec.id] = ",".join(dict.fromkeys(keys))
    changed = {bid for bid, keys in result.items() if keys != DEFAULT_KEYMAP[bid]}
    problems.extend(_conflicts(result, changed=changed))
    return result, problems


def _conflicts(keymap: Mapping[str, str], changed: set[str]) -> list[tuple[Key, str]]:
    """Two actions on one key in one scope, or a key stolen from a priority app binding."""
    problems: list[tuple[Key, str]] = []
    owner: dict[tuple[str, str], str] = {}
    priority_keys = {
        k: b.id for b in BINDINGS if b.priority for k in keymap.get(b.id, "").split(",") if k
    }
    # Blame the binding the user changed, so the message points at the line they wrote.
    ordered = sorted(keymap, key=lambda bid: (bid in changed, list(DEFAULT_KEYMAP).index(bid)))
    for bid in ordered:
        scope = BINDINGS_BY_ID[bid].scope
        for k in filter(None, keymap[bid].split(",")):
            other = owner.get((scope, k))
            if other is not None:
                problems.append(((bid,), f"{k!r} is already bound to {other}"))
                continue
            owner[(scope, k)] = bid
            prio = priority_keys.get(k)
            if prio is not None and prio != bid:
                problems.append(((bid,), f"{k!r} is taken by {prio}, which works everywhere"))
    return problems


def textual_keymap(keymap: Mapping[str, str]) -> dict[str, str]:
    """The map to pass to ``App.set_keymap``: unbound actions (empty value) left out."""
    return {bid: keys for bid, keys in keymap.items() if keys}
