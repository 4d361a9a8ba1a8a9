"""Matching commit write sets against the read sets of live subscriptions.

For every index we keep the subscribed intervals in two places:

- *buckets*: an interval all of whose keys share the same first encoded component (the usual
  case: ``eq("spaceId", s)`` or a ``get`` by id) is filed under that component, so a write
  looks up only the intervals of its own space / document;
- *wide*: everything else (open ranges, full-table scans), checked one by one.

A write key is therefore checked against the intervals that can possibly contain it, not
against every subscription of the table.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from collab.backend import keys
from collab.backend.database import ReadSet

Sub = Hashable


def first_component_len(key: bytes) -> int | None:
    """Length of the first self-delimited value in ``key`` (see keys.py), or None."""
    if not key:
        return None
    tag = key[0]
    if tag in (0x02, 0x03):  # undefined, null
        return 1
    if tag in (0x04, 0x05):  # int64, float64
        return 9 if len(key) >= 9 else None
    if tag == 0x06:  # boolean
        return 2 if len(key) >= 2 else None
    if tag in (0x07, 0x08):  # string, bytes: escaped, terminated by 00 00
        i = 1
        while True:
            j = key.find(b"\x00", i)
            if j < 0 or j + 1 >= len(key):
                return None
            if key[j + 1] == 0x00:
                return j + 2
            i = j + 2
    if tag in (0x09, 0x0A):  # array, object: components then 00
        i = 1
        while i < len(key):
            if key[i] == 0x00:
                return i + 1
            n = first_component_len(key[i:])
            if n is None:
                return None
            i += n
        return None
    return None


def _bucket_of(lo: bytes, hi: bytes | None) -> bytes | None:
    n = first_component_len(lo)
    if n is None or hi is None:
        return None
    component = lo[:n]
    end = keys.prefix_end(component)
    if end is not None and hi <= end:
        return component
    return None


class SubscriptionIndex:
    def __init__(self) -> None:
        self._buckets: dict[str, dict[bytes, dict[Sub, list[tuple[bytes, bytes | None]]]]] = {}
        self._wide: dict[str, dict[Sub, list[tuple[bytes, bytes | None]]]] = {}
        self._registered: dict[Sub, list[tuple[str, bytes | None]]] = {}

    def __len__(self) -> int:
        return len(self._registered)

    def add(self, sub: Sub, reads: ReadSet) -> None:
        self.remove(sub)
        places: list[tuple[str, bytes | None]] = []
        for ix, intervals in reads.intervals.items():
            for lo, hi in intervals:
                bucket = _bucket_of(lo, hi)
                if bucket is None:
                    self._wide.setdefault(ix, {}).setdefault(sub, []).append((lo, hi))
                else:
                    by_sub = self._buckets.setdefault(ix, {}).setdefault(bucket, {})
                    by_sub.setdefault(sub, []).append((lo, hi))
                places.append((ix, bucket))
        self._registered[sub] = places

    def remove(self, sub: Sub) -> None:
        for ix, bucket in self._registered.pop(sub, ()):
            if bucket is None:
                wide = self._wide.get(ix)
                if wide is not None:
                    wide.pop(sub, None)
                    if not wide:
                        del self._wide[ix]
            else:
                buckets = self._buckets.get(ix)
                if buckets is None:
                    continue
                by_sub = buckets.get(bucket)
                if by_sub is not None:
                    by_sub.pop(sub, None)
                    if not by_sub:
                        del buckets[bucket]
                if not buckets:
                    del self._buckets[ix]

    def affected(self, writes: Iterable[tuple[str, bytes]]) -> set[Sub]:
        hit: set[Sub] = set()
        for ix, key in writes:
            wide = self._wide.get(ix)
            if wide:
                for sub, intervals in wide.items():
                    if sub not in hit and any(keys.in_interval(key, lo, hi) for lo, hi in intervals):
                        hit.add(sub)
            buckets = self._buckets.get(ix)
            if buckets:
                n = first_component_len(key)
                by_sub = buckets.get(key[:n]) if n else None
                if by_sub:
                    for sub, intervals in by_sub.items():
                        if sub not in hit and any(keys.in_interval(key, lo, hi) for lo, hi in intervals):
                            hit.add(sub)
        return hit
