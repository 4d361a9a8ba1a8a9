from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collab.wire import Int64, ValueError_, decode_ts, dumps, encode_ts, loads


def test_known_encodings() -> None:
    assert encode_ts(0) == "AAAAAAAAAAA="
    assert dumps(Int64(1)) == '{"$integer":"AQAAAAAAAAA="}'
    assert dumps({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'
    assert dumps(b"\x00\x01") == '{"$bytes":"AAE="}'
    assert loads(dumps(float("nan"))) != loads(dumps(float("nan")))  # NaN survives as NaN
    neg0 = loads(dumps(-0.0))
    assert neg0 == 0.0 and math.copysign(1, neg0) < 0
    assert loads(dumps(float("-inf"))) == float("-inf")


@pytest.mark.parametrize(
    "text",
    [
        '{"$integer":"AQ=="}',  # not 8 bytes
        '{"$float":"AAAAAAAA8D8="}',  # 1.0 is not a special float
        '{"$set":[]}',
        '{"$bogus":1, "x": 2}',
        '{"$integer":"@@@"}',
    ],
)
def test_rejects_malformed_specials(text: str) -> None:
    with pytest.raises(ValueError_):
        loads(text)


def test_depth_limit() -> None:
    deep: object = 1
    for _ in range(70):
        deep = [deep]
    with pytest.raises(ValueError_):
        dumps(deep)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.text(max_size=20)
    | st.floats(allow_nan=False)
    | st.integers(-(2**63), 2**63 - 1).map(Int64)
    | st.binary(max_size=16),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_roundtrip(value: object) -> None:
    back = loads(dumps(value))
    assert dumps(back) == dumps(value)


@given(st.integers(0, 2**64 - 1))
def test_ts_roundtrip(ts: int) -> None:
    assert decode_ts(encode_ts(ts)) == ts
