"""Key syntax, the keys terminals never deliver, conflicts, and the map handed to Textual."""

from __future__ import annotations

import pytest

from collab.config import BINDINGS_BY_ID, DEFAULT_KEYMAP, textual_keymap
from collab.config.keymap import (
    KeyProblem,
    key_problem,
    normalize_key,
    parse_keys,
    validate_keymap,
)


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("ctrl+s", "ctrl+s"),
        ("Ctrl+S", "ctrl+s"),
        ("shift+ctrl+left", "ctrl+shift+left"),  # Textual sorts modifiers
        ("?", "question_mark"),
        ("+", "plus"),
        ("ctrl++", "ctrl+plus"),
        ("F5", "f5"),
        ("Return", "enter"),
        ("U", "U"),
        ("alt+enter", "alt+enter"),
        ("question_mark", "question_mark"),
    ],
)
def test_normalize(written: str, canonical: str) -> None:
    assert normalize_key(written) == canonical


@pytest.mark.parametrize("bad", ["", "foo+x", "ctrl+ctrl+x", "ctrl+notakey9"])
def test_malformed_keys(bad: str) -> None:
    with pytest.raises(KeyProblem):
        normalize_key(bad)


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("ctrl+enter", "not delivered"),
        ("shift+enter", "not delivered"),
        ("ctrl+shift+enter", "not delivered"),
        ("shift+space", "not delivered"),
        ("ctrl+b", "tmux prefix"),
        ("ctrl+a", "screen"),
        ("ctrl+i", "tab"),
        ("ctrl+m", "enter"),
        ("ctrl+1", "digit"),
        ("ctrl+shift+a", "ctrl+shift"),
        ("ctrl+comma", "ctrl with comma"),
        ("shift+a", "capital"),
    ],
)
def test_undeliverable_keys(key: str, reason: str) -> None:
    problem = key_problem(normalize_key(key))
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "key", ["ctrl+j", "alt+enter", "shift+tab", "ctrl+left", "f12", "ctrl+backslash"]
)
def test_deliverable_keys(key: str) -> None:
    assert key_problem(normalize_key(key)) is None


def test_multiplexer_opt_in() -> None:
    assert key_problem("ctrl+b", allow_multiplexer_keys=True) is None


def test_parse_keys() -> None:
    assert parse_keys("f1, ?") == ["f1", " ?"]
    assert parse_keys(["f1", "?"]) == ["f1", "?"]
    assert parse_keys("") == []
    assert parse_keys(",") == [","]
    with pytest.raises(KeyProblem):
        parse_keys(3)


def test_defaults_validate_clean() -> None:
    keymap, problems = validate_keymap({})
    assert problems == [] and keymap == DEFAULT_KEYMAP


def test_unbinding() -> None:
    keymap, problems = validate_keymap({"artifact.delete": ""})
    assert problems == [] and keymap["artifact.delete"] == ""
    assert "artifact.delete" not in textual_keymap(keymap)


def test_same_key_in_different_scopes_is_fine() -> None:
    # "d" means diff in history and variations, discuss in the tree: different focus contexts.
    ids = ("history.diff", "variations.diff", "artifact.discuss")
    assert {BINDINGS_BY_ID[b].scope for b in ids} == {"history", "variations", "artifact"}
    _, problems = validate_keymap({"history.restore": "x"})
    assert problems == []


def test_duplicate_within_a_scope_is_an_error() -> None:
    _, problems = validate_keymap({"history.restore": "d"})
    assert problems == [(("history.restore",), "'d' is already bound to history.diff")]


def test_swapping_two_keys_is_allowed() -> None:
    _, problems = validate_keymap({"artifact.new": "e", "artifact.edit": "n"})
    assert problems == []


def test_textual_keymap_is_the_full_map() -> None:
    assert textual_keymap(DEFAULT_KEYMAP) == DEFAULT_KEYMAP
