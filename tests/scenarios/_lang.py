"""The scenario language (tests/scenarios/README.md), Python side: loading files, resolving
argument values, matching results and errors. Its twin is convex/tests/scenario_lang.ts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000_000.0
# `$now` accepts a value up to this much later than the scenario's clock: while the fake clock
# stands still, convex-test gives each transaction a time 1 ms past the previous commit.
CLOCK_DRIFT_MS = 100.0
LIMIT_KINDS = ("documentSize", "nesting", "arrayLength", "objectFields", "bytesRead", "bytesWritten",
               "documentsRead", "documentsWritten", "databaseQueries", "functionsScheduled", "userTime")
# How a Convex deployment (and the embedded backend, which words them the same) reports each
# limit (convex-backend: common/src/document.rs, value/src/*.rs, database/src/reads.rs and
# writes.rs, model/src/scheduled_jobs, isolate/src/termination.rs).
LIMIT_MESSAGES = {
    "documentSize": r"Value is too large",
    "nesting": r"Document is too nested",
    "arrayLength": r"Array length is too long",
    "objectFields": r"Object has too many fields",
    "bytesRead": r"Too many bytes read in a single function execution",
    "bytesWritten": r"Too many bytes written in a single function execution",
    "documentsRead": r"Too many documents read in a single function execution",
    "documentsWritten": r"Too many writes in a single function execution",
    "databaseQueries": r"Too many reads in a single function execution",
    "functionsScheduled": r"Too many functions scheduled by this mutation",
    "userTime": r"Function execution timed out",
}
VALIDATION_MESSAGE = r"ArgumentValidationError"


def scenario_files() -> list[Path]:
    return sorted(HERE.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def limit_kinds_expected(scenario: dict[str, Any]) -> set[str]:
    """The limit kinds a scenario's steps expect to fail on."""
    kinds: set[str] = set()

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            err = x.get("$error")
            if isinstance(err, dict) and "limit" in err:
                kinds.add(str(err["limit"]))
            for val in x.values():
                walk(val)
        elif isinstance(x, list):
            for val in x:
                walk(val)

    walk(scenario["steps"])
    return kinds


class Mismatch(AssertionError):
    pass


@dataclass
class Failure:
    """A call that failed: ConvexError data (``data``), or only a message."""

    message: str
    data: Any = None
    is_convex_error: bool = False


@dataclass
class State:
    saved: dict[str, Any] = field(default_factory=dict)
    now: float = T0
    # handle -> the token subject the runner gives it (`$subject`)
    subjects: dict[str, str] = field(default_factory=dict)
    # how far before / after `now` a `$now` value may be (a real deployment's clock is not ours)
    clock_slack: tuple[float, float] = (0.0, CLOCK_DRIFT_MS)

    # --- argument values ----------------------------------------------------------------------

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "$ref":
                return self.ref(str(arg))
            if key == "$repeat":
                text, times = arg
                return str(text) * int(times)
            if key == "$nested":
                depth, leaf = arg
                out = self.resolve(leaf)
                for _ in range(int(depth)):
                    out = {"a": out}
                return out
            if key == "$array":
                n, item = arg
                return [self.resolve(item) for _ in range(int(n))]
            if key == "$object":
                n, item = arg
                return {f"f{i}": self.resolve(item) for i in range(int(n))}
        if any(k.startswith("$") for k in value):
            raise ValueError(f"unknown argument form {sorted(value)}")
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, path: str) -> Any:
        name, *rest = path.split(".")
        if name not in self.saved:
            raise KeyError(f"$ref {path!r}: nothing saved as {name!r}")
        value = self.saved[name]
        for part in rest:
            value = value[int(part)] if isinstance(value, list) else value[part]
        return value

    # --- expectations -------------------------------------------------------------------------

    def match(self, expected: Any, actual: Any, where: str = "result") -> None:
        if isinstance(expected, dict) and any(k.startswith("$") for k in expected):
            self._match_special(expected, actual, where)
        elif isinstance(expected, dict):
            if not isinstance(actual, dict):
                raise Mismatch(f"{where}: expected an object, got {_show(actual)}")
            if set(expected) != set(actual):
                raise Mismatch(f"{where}: fields differ: missing {sorted(set(expected) - set(actual))}, "
                               f"unexpected {sorted(set(actual) - set(expected))}")
            for key, exp in expected.items():
                self.match(exp, actual[key], f"{where}.{key}")
        elif isinstance(expected, list):
            if not isinstance(actual, list) or len(actual) != len(expected):
                raise Mismatch(f"{where}: expected an array of {len(expected)}, got {_show(actual)}")
            for i, (exp, act) in enumerate(zip(expected, actual)):
                self.match(exp, act, f"{where}[{i}]")
        elif not _same_scalar(expected, actual):
            raise Mismatch(f"{where}: expected {_show(expected)}, got {_show(actual)}")

    def _match_special(self, expected: dict[str, Any], actual: Any, where: str) -> None:
        if "$save" in expected:
            if "$match" in expected:
                self.match(expected["$match"], actual, where)
            self.saved[str(expected["$save"])] = actual
        elif "$ref" in expected:
            want = self.ref(str(expected["$ref"]))
            if not _deep_equal(want, actual):
                raise Mismatch(f"{where}: expected ${expected['$ref']} = {_show(want)}, got {_show(actual)}")
        elif "$partial" in expected:
            if not isinstance(actual, dict):
                raise Mismatch(f"{where}: expected an object, got {_show(actual)}")
            for key, exp in expected["$partial"].items():
                if key not in actual:
                    raise Mismatch(f"{where}: missing field {key!r} in {_show(actual)}")
                self.match(exp, actual[key], f"{where}.{key}")
        elif "$type" in expected:
            if _type_of(actual) != expected["$type"]:
                raise Mismatch(f"{where}: expected a {expected['$type']}, got {_show(actual)}")
        elif "$len" in expected:
            if not isinstance(actual, (list, str)) or len(actual) != expected["$len"]:
                raise Mismatch(f"{where}: expected length {expected['$len']}, got {_show(actual)}")
        elif "$contains" in expected:
            if not isinstance(actual, list):
                raise Mismatch(f"{where}: expected an array, got {_show(actual)}")
            for item in actual:
                try:
                    self.match(expected["$contains"], item, where)
                    return
                except Mismatch:
                    continue
            raise Mismatch(f"{where}: no element matches {_show(expected['$contains'])} in {_show(actual)}")
        elif "$subject" in expected:
            want_subject = self.subjects[str(expected["$subject"])]
            if actual != want_subject:
                raise Mismatch(f"{where}: expected the subject {want_subject!r}, got {_show(actual)}")
        elif "$now" in expected:
            want = self.now + float(expected["$now"])
            low, high = want - self.clock_slack[0], want + self.clock_slack[1]
            if _type_of(actual) != "number" or not low <= actual < high:
                raise Mismatch(f"{where}: expected now{expected['$now']:+} = {want}, got {_show(actual)}")
        elif "$error" in expected:
            raise Mismatch(f"{where}: expected an error {_show(expected)}, got the value {_show(actual)}")
        else:
            raise ValueError(f"unknown expectation form {sorted(expected)}")

    def match_failure(self, expected: Any, failure: Failure, where: str) -> None:
        if not (isinstance(expected, dict) and "$error" in expected):
            raise Mismatch(f"{where}: expected a value, the call failed: {failure.message}")
        want = expected["$error"]
        if isinstance(want, str):
            if not failure.is_convex_error or not isinstance(failure.data, dict):
                raise Mismatch(f"{where}: expected ConvexError {want}, got: {failure.message}")
            if failure.data.get("code") != want:
                raise Mismatch(f"{where}: expected code {want}, got {_show(failure.data)}")
            if "data" in expected:
                self.match({"$partial": expected["data"]}, failure.data, f"{where}.errorData")
            return
        if failure.is_convex_error:
            raise Mismatch(f"{where}: expected {_show(want)}, got ConvexError {_show(failure.data)}")
        if "limit" in want:
            pattern = LIMIT_MESSAGES[want["limit"]]
        elif want.get("validation"):
            pattern = VALIDATION_MESSAGE
        else:
            raise ValueError(f"unknown $error form {want}")
        if not re.search(pattern, failure.message):
            raise Mismatch(f"{where}: expected a failure matching {pattern!r}, got: {failure.message}")


def _type_of(x: Any) -> str:
    if x is None:
        return "null"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, (int, float)):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return type(x).__name__


def _same_scalar(expected: Any, actual: Any) -> bool:
    if _type_of(expected) != _type_of(actual):
        return False
    return bool(expected == actual)


def _deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
    return _same_scalar(a, b)


def _show(x: Any) -> str:
    text = json.dumps(x, default=repr)
    return text if len(text) <= 300 else text[:297] + "..."
