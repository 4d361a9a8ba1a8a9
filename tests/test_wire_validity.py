"""wire/validity.py: what text and numbers may travel, and how outside text is cleaned."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab.wire import ValueError_, dumps
from collab.wire.validity import InvalidValue, clean_text, find_invalid, is_valid_text


def test_clean_text_replaces_lone_surrogates_and_joins_split_pairs() -> None:
    assert clean_text("plain ascii") == "plain ascii"
    assert clean_text("é \U0001F600") == "é \U0001F600"
    assert clean_text("a\ud800b") == "a\ufffdb"
    assert clean_text("\udc80\ud83d") == "\ufffd\ufffd"
    assert clean_text("\ud83d\ude00") == "\U0001F600"  # a pair that arrived as two code points


@given(st.text(alphabet=st.characters(codec=None)))
def test_clean_text_always_gives_encodable_text(text: str) -> None:
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # never raises
    assert is_valid_text(cleaned)
    if is_valid_text(text):
        assert cleaned == text


def test_find_invalid_names_the_first_bad_field() -> None:
    assert find_invalid({"body": "fine", "n": 1.5, "tags": ["a"]}) is None
    assert find_invalid({"body": "\ud800"}) == InvalidValue("body", "is not valid Unicode (it holds a lone surrogate)")
    assert find_invalid({"chunks": [{"text": "a"}, {"text": "\udfff"}]}).path == "chunks[1].text"  # type: ignore[union-attr]
    assert find_invalid({"a": {"\ud800": 1}}).path == "a"  # type: ignore[union-attr]
    assert find_invalid({"\ud800": 1}).field == "(arguments)"  # type: ignore[union-attr]
    assert find_invalid({"x": float("inf")}).path == "x"  # type: ignore[union-attr]
    assert find_invalid({"x": float("nan")}, numbers=False) is None
    assert find_invalid("\ud800").field == "(arguments)"  # type: ignore[union-attr]
    first = find_invalid({"a": "\ud800", "b": "\ud801"})
    assert first is not None and first.path == "a"


def test_find_invalid_stops_at_the_depth_limit() -> None:
    deep: object = "\ud800"
    for _ in range(10_000):
        deep = [deep]
    assert find_invalid(deep) is None  # not descended: the codec refuses the depth itself


def test_dumps_refuses_invalid_text_unless_told_otherwise() -> None:
    with pytest.raises(ValueError_, match=r"at doc\.body"):
        dumps({"doc": {"body": "a\ud800"}})
    assert dumps({"s": "\U0001F600"}) == '{"s":"\\ud83d\\ude00"}'
    assert json.loads(dumps({"s": "\ud800"}, strict_text=False)) == {"s": "\ud800"}
    assert dumps({"s": "\\ud800 is just text"}) == '{"s":"\\\\ud800 is just text"}'
    # A literal backslash-"ud83d" right before a lone low surrogate looks like a valid pair to
    # a scan of the JSON text; it must still be refused.
    with pytest.raises(ValueError_, match=r"at s"):
        dumps({"s": "\\ud83d\udc00"})
    with pytest.raises(ValueError_, match=r"at list\[1\]"):
        dumps({"list": ["\U0001F600", "\ud83d\ud83d"]})
