"""Convex's limits, enforced by the embedded backend so that a function that passes here does
not fail on a Convex deployment (docs/BACKEND.md "Limits").

Values (every value a function receives, returns or stores): at most 8,192 array elements and
1,024 fields per object. Documents: at most 1 MiB (Convex's size of the document, system
fields included) and 16 levels of nesting. Per transaction (query or mutation): 16 MiB and
32,000 documents read, 4,096 index ranges read, 16 MiB and 16,000 documents written, 1,000
functions scheduled, 1 s of user code time.

Each failure is worded as a Convex deployment words it (convex-backend: common/src/document.rs,
value/src/{array,object}.rs, database/src/{reads,writes}.rs, model/src/scheduled_jobs,
isolate/src/termination.rs), and the engine rolls the transaction back: nothing changes.
User time is this thread's CPU time (``time.thread_time``), checked at every database call and
when the function returns, so a machine busy with other processes does not make a function
fail; Python being slower than V8, the same budget is stricter here than on Convex.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from collab.wire import Int64

MiB = 1 << 20
MAX_DOCUMENT_SIZE = MiB
MAX_DOCUMENT_NESTING = 16
MAX_ARRAY_LEN = 8192
MAX_OBJECT_FIELDS = 1024
OVER_LIMIT_HELP = ("Consider using smaller limits in your queries, paginating your queries, or using "
                   "indexed queries with a selective index range expressions.")

# convex-test's `transactionLimits` names -> ours (the shared scenarios use its names).
CONVEX_TEST_NAMES = {
    "bytesRead": "bytes_read",
    "bytesWritten": "bytes_written",
    "documentsRead": "documents_read",
    "documentsWritten": "documents_written",
    "databaseQueries": "index_ranges",
    "functionsScheduled": "functions_scheduled",
}


class LimitExceeded(Exception):
    """A Convex limit was exceeded; ``short`` is Convex's short code (``TooManyWrites``...)."""

    def __init__(self, short: str, message: str) -> None:
        super().__init__(message)
        self.short = short


@dataclass(frozen=True)
class TransactionLimits:
    bytes_read: int = 16 * MiB
    bytes_written: int = 16 * MiB
    documents_read: int = 32_000
    documents_written: int = 16_000
    index_ranges: int = 4_096
    functions_scheduled: int = 1_000
    user_time_ms: float = 1_000.0

    @classmethod
    def from_convex_test(cls, limits: Mapping[str, int]) -> "TransactionLimits":
        """Limits named as convex-test's ``transactionLimits`` (the defaults for the rest)."""
        unknown = set(limits) - set(CONVEX_TEST_NAMES)
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {sorted(CONVEX_TEST_NAMES)}")
        return cls(**{CONVEX_TEST_NAMES[k]: int(v) for k, v in limits.items()})


DEFAULT_LIMITS = TransactionLimits()
assert {f.name for f in fields(TransactionLimits)} >= set(CONVEX_TEST_NAMES.values())


# --- values ---------------------------------------------------------------------------------------

def _str_size(s: str) -> int:
    return 2 + (len(s) if s.isascii() else len(s.encode("utf-8", "surrogatepass")))


def value_size(value: Any) -> int:
    """Convex's size of a value (``ConvexValue::size``, ``getConvexSize`` in convex/values)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, Int64)):
        return 9
    if isinstance(value, str):
        return _str_size(value)
    if isinstance(value, bytes):
        return 2 + len(value)
    if isinstance(value, list):
        return 2 + sum(value_size(v) for v in value)
    if isinstance(value, dict):
        return 2 + sum(_str_size(k) - 1 + value_size(v) for k, v in value.items())
    raise TypeError(f"not a Convex value: {type(value).__name__}")


def format_size(n: int) -> str:
    """Sizes as convex-backend prints them (humansize, binary units)."""
    value, unit = float(n), "B"
    for next_unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, next_unit
    text = f"{value:.2f}".rstrip("0").rstrip(".") if unit != "B" else str(n)
    return f"{text} {unit}"


def check_value(value: Any) -> None:
    """Array lengths and field counts, which Convex checks on every value."""
    if isinstance(value, list):
        if len(value) > MAX_ARRAY_LEN:
            raise LimitExceeded("ArrayTooLong",
                                f"Array length is too long ({len(value)} > maximum length {MAX_ARRAY_LEN})")
        for item in value:
            check_value(item)
    elif isinstance(value, dict):
        if len(value) > MAX_OBJECT_FIELDS:
            raise LimitExceeded("TooManyFieldsError",
                                f"Object has too many fields ({len(value)} > maximum number {MAX_OBJECT_FIELDS})")
        for item in value.values():
            check_value(item)


def nesting(value: Any) -> int:
    """Convex's nesting: 0 for a scalar, 1 + the deepest member for an array or object."""
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


def check_document(doc: dict[str, Any]) -> int:
    """A document about to be written (system fields included); returns its size."""
    check_value(doc)
    depth = nesting(doc)
    if depth > MAX_DOCUMENT_NESTING:
        raise LimitExceeded("InvalidDocumentError",
                            f"Document is too nested (nested {depth} levels deep > maximum nesting "
                            f"{MAX_DOCUMENT_NESTING})")
    size = value_size(doc)
    if size > MAX_DOCUMENT_SIZE:
        raise LimitExceeded("ValueTooLargeError",
                            f"Value is too large ({format_size(size)} > maximum size "
                            f"{format_size(MAX_DOCUMENT_SIZE)})")
    return size


# --- transactions ---------------------------------------------------------------------------------

def _duration(ms: float) -> str:
    return f"{ms / 1000:g}s" if ms % 1000 == 0 else f"{ms:g}ms"


class Meter:
    """What one query or mutation has read, written, scheduled and spent so far. The first
    limit exceeded is kept: the transaction fails even if the function caught the error."""

    def __init__(self, limits: TransactionLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.bytes_read = 0
        self.documents_read = 0
        self.index_ranges = 0
        self.bytes_written = 0
        self.documents_written = 0
        self.functions_scheduled = 0
        self.exceeded: LimitExceeded | None = None
        self._cpu0 = time.thread_time()

    def _raise(self, error: LimitExceeded) -> None:
        if self.exceeded is None:
            self.exceeded = error
        raise self.exceeded

    def check_time(self) -> None:
        if self.exceeded is not None:
            raise self.exceeded
        if (time.thread_time() - self._cpu0) * 1000 > self.limits.user_time_ms:
            self._raise(LimitExceeded("UserTimeout", "Function execution timed out (maximum duration: "
                                                     f"{_duration(self.limits.user_time_ms)})"))

    def index_range(self) -> None:
        self.check_time()
        self.index_ranges += 1
        if self.index_ranges > self.limits.index_ranges:
            self._raise(LimitExceeded("TooManyReads", "Too many reads in a single function execution "
                                                      f"(limit: {self.limits.index_ranges}). {OVER_LIMIT_HELP}"))

    def read(self, doc: dict[str, Any]) -> None:
        self.check_time()
        self.documents_read += 1
        self.bytes_read += value_size(doc)
        if self.documents_read > self.limits.documents_read:
            self._raise(LimitExceeded("TooManyDocumentsRead", "Too many documents read in a single function "
                                      f"execution (limit: {self.limits.documents_read}). {OVER_LIMIT_HELP}"))
        if self.bytes_read > self.limits.bytes_read:
            self._raise(LimitExceeded("TooManyBytesRead", "Too many bytes read in a single function execution "
                                      f"(limit: {self.limits.bytes_read} bytes). {OVER_LIMIT_HELP}"))

    def write(self, size: int) -> None:
        self.check_time()
        self.documents_written += 1
        self.bytes_written += size
        if self.documents_written > self.limits.documents_written:
            self._raise(LimitExceeded("TooManyWrites", "Too many writes in a single function execution "
                                      f"(limit: {self.limits.documents_written})"))
        if self.bytes_written > self.limits.bytes_written:
            self._raise(LimitExceeded("TooManyBytesWritten", "Too many bytes written in a single function "
                                      f"execution (limit: {format_size(self.limits.bytes_written)})"))

    def schedule(self) -> None:
        self.check_time()
        if self.functions_scheduled >= self.limits.functions_scheduled:
            self._raise(LimitExceeded("TooManyFunctionsScheduled", "Too many functions scheduled by this "
                                      f"mutation (limit: {self.limits.functions_scheduled})"))
        self.functions_scheduled += 1
