"""The index key encoding preserves Convex order and is prefix-free."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from collab.backend import keys
from collab.backend.ids import InvalidId, new_id, table_number_of
from collab.backend.invalidation import first_component_len
from collab.wire import Int64

import pytest

scalars = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=8), st.binary(max_size=8),
    st.integers(-(2**63), 2**63 - 1).map(Int64),
)

_RANK = {type(None): 1, Int64: 2, float: 3, bool: 4, str: 5, bytes: 6}


def _order(x: object) -> tuple[int, object]:
    return (_RANK[type(x)], x)


@given(scalars, scalars)
def test_order_matches_convex_order(a: object, b: object) -> None:
    ka, kb = keys.encode_value(a), keys.encode_value(b)
    if type(a) is type(b) or _RANK[type(a)] != _RANK[type(b)]:
        oa, ob = _order(a), _order(b)
        if oa[0] != ob[0]:
            assert (ka < kb) == (oa[0] < ob[0])
        elif a != b and not (isinstance(a, float) and a == 0.0):
            assert (ka < kb) == (a < b)  # type: ignore[operator]


@given(st.lists(scalars, min_size=1, max_size=4), st.lists(scalars, min_size=1, max_size=4))
def test_tuple_order_is_lexicographic(a: list[object], b: list[object]) -> None:
    ea, eb = keys.encode_key(a), keys.encode_key(b)
    for x, y in zip(a, b):
        kx, ky = keys.encode_value(x), keys.encode_value(y)
        if kx != ky:
            assert (ea < eb) == (kx < ky)
            return


@given(scalars, st.binary(max_size=8))
def test_first_component_is_self_delimiting(value: object, tail: bytes) -> None:
    enc = keys.encode_value(value)
    assert first_component_len(enc + tail) == len(enc)


def test_ids_roundtrip_and_reject_garbage() -> None:
    doc_id = new_id(10001)
    assert len(doc_id) == 32 and table_number_of(doc_id) == 10001
    broken = doc_id[:-1] + ("0" if doc_id[-1] != "0" else "1")
    with pytest.raises(InvalidId):
        table_number_of(broken)
    with pytest.raises(InvalidId):
        table_number_of("not an id at all, clearly not!!")
