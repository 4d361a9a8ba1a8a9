"""The key-path -> line index, on hand-written tricky TOML and on generated documents."""

from __future__ import annotations

import tomllib
from typing import Any

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from collab.config.errors import Key
from collab.config.toml_lines import LineIndex, key_on_line

TRICKY = '''\
# comment [not.a.table]
[backend]
url = "x"  # [fake]
"quoted.key" = 1
'single' = 2

[[agents]]
handle = "a"
persona = """
[not.a.table]
x = 1
"""

[[agents]]
handle = "b"
tools.web = true
literal = \'\'\'
y = 2\'\'\'

[agents.extra]
k = 1

[flows.writing]
stages = [
  { name = "draft", actor = "dara" },  # first
  # a comment between items
  { name = "edit", sub = { a = [1, 2] } },
]
when = 1979-05-27 07:32:00Z
after = true

[[flows.x.stages]]
name = 's'
[[flows.x.stages]]
name = 't'
[[flows.x.stages.checks]]
c = 1
'''


def test_tricky_document() -> None:
    tomllib.loads(TRICKY)  # the fixture itself is valid TOML
    ix = LineIndex(TRICKY)
    expect: dict[Key, int] = {
        ("backend",): 2,
        ("backend", "url"): 3,
        ("backend", "quoted.key"): 4,
        ("backend", "single"): 5,
        ("agents", 0): 7,
        ("agents", 0, "persona"): 9,
        ("agents", 1): 14,
        ("agents", 1, "tools", "web"): 16,
        ("agents", 1, "literal"): 17,
        ("agents", 1, "extra", "k"): 21,
        ("flows", "writing", "stages", 0, "actor"): 25,
        ("flows", "writing", "stages", 1, "sub", "a", 1): 27,
        ("flows", "writing", "when"): 29,
        ("flows", "writing", "after"): 30,
        ("flows", "x", "stages", 1, "name"): 35,
        ("flows", "x", "stages", 1, "checks", 0, "c"): 37,
    }
    for key, line in expect.items():
        assert ix.line_of(key) == line, key
    assert not ix.has(("not", "a", "table"))
    assert not ix.has(("agents", 0, "x"))


def test_missing_key_falls_back_to_its_table() -> None:
    ix = LineIndex(TRICKY)
    assert ix.line_of(("agents", 1, "name")) == 14
    assert ix.line_of(("nothing",)) is None


def test_key_on_line() -> None:
    text = '[a]\n  x.y = [\n"q" = 1\n# c\n[b]\n'
    assert key_on_line(text, 2) == ("x", "y")
    assert key_on_line(text, 3) == ("q",)
    assert key_on_line(text, 4) == ()
    assert key_on_line(text, 5) == ()
    assert key_on_line(text, 99) == ()


def test_never_raises_on_garbage() -> None:
    for text in ("[", "[[", "a = ", 'a = "', "a = [1,", "= 1", "a.=1", '"""', "{", "x = {a"):
        LineIndex(text)


# -- generated documents: every key tomli-w writes is found on the line that writes it -------

_names = st.text(alphabet="abcxyz_-.é \"'", min_size=1, max_size=6)
_scalars = st.one_of(
    st.integers(-5, 5),
    st.booleans(),
    st.text(alphabet="ab\n\"'[]=#\\ ", max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_names, inner, min_size=1, max_size=3),
    ),
    max_leaves=12,
)
_docs = st.dictionaries(_names, _values, min_size=1, max_size=4)


def _leaf_keys(value: Any, key: Key = ()) -> list[Key]:
    if isinstance(value, dict):
        return [k for n, v in value.items() for k in _leaf_keys(v, key + (n,))] or [key]
    if isinstance(value, list) and value:
        return [k for i, v in enumerate(value) for k in _leaf_keys(v, key + (i,))]
    return [key]


def _written_on(text: str, line: int, key: Key, ix: LineIndex) -> bool:
    """A table key: its line holds the key's name (as TOML writes it). An array item: its line
    is at or after the array's, and items come in order."""
    src = text.splitlines()[line - 1]
    last = key[-1]
    if isinstance(last, int):
        parent = ix.line_of(key[:-1])
        before = ix.line_of(key[:-1] + (last - 1,)) if last else parent
        return parent is not None and before is not None and line >= before >= parent
    forms = {last, tomli_w.dumps({last: 0}).split(" = ")[0]}
    return any(f in src for f in forms)


@settings(max_examples=150, deadline=None)
@given(_docs, st.booleans())
def test_generated_documents(doc: dict[str, Any], multiline: bool) -> None:
    text = tomli_w.dumps(doc, multiline_strings=multiline)
    assert tomllib.loads(text) == doc
    ix = LineIndex(text)
    for key in _leaf_keys(doc):
        if key == ():
            continue
        # Check the leaf and every enclosing key.
        for n in range(1, len(key)):
            assert ix.has(key[:n]), (key[:n], text)
        assert ix.has(key), (key, text)
        line = ix.line_of(key)
        assert line is not None and _written_on(text, line, key, ix), (key, line, text)
