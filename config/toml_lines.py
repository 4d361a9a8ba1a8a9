"""Find the line where a key path is written in TOML text.

tomllib returns plain data with no positions, so errors found after parsing (pydantic
validation) would otherwise only say *what* is wrong. This scanner walks the text once and
records, for every key path, the line that defines it:

* tables ``[a.b]`` and arrays of tables ``[[agents]]`` (each occurrence gets its index, also
  when nested: ``[[flows.x.stages]]``), with quoted and dotted keys;
* keys, including dotted keys ``a.b = 1`` (the implicit table ``a`` gets the same line);
* inline tables ``{ a = 1 }`` and arrays, including multi-line arrays of inline tables, whose
  items get the line where they start;
* strings of every kind are skipped, so ``[x]`` or ``key = 1`` inside a multi-line persona
  is never taken for structure.

It is lenient: it is run on text tomllib accepted (and, for syntax errors, on the text before
the bad line), and it never raises. A lookup returns the line of the longest known prefix, so
a missing key is reported at its table's header.
"""

from __future__ import annotations

import re
import tomllib

from .errors import Key

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR_END = ",]}#\n"


class LineIndex:
    """Key path -> 1-based line number, for one TOML text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[Key, int] = {}
        # The table each line belongs to and the key written on it (for syntax errors).
        self.table_at_line: dict[int, Key] = {}
        _Scanner(text, self).run()

    def line_of(self, key: Key) -> int | None:
        """The line of ``key``, else of its longest prefix that is written in the text."""
        for n in range(len(key), 0, -1):
            found = self.lines.get(tuple(key[:n]))
            if found is not None:
                return found
        return None

    def has(self, key: Key) -> bool:
        return tuple(key) in self.lines

    def alias(self, original: Key, alias: Key) -> None:
        """Make ``alias`` resolve to the line of ``original`` (for keys the loader renames)."""
        line = self.lines.get(original)
        if line is not None:
            self.lines.setdefault(alias, line)

    def table_before(self, line: int) -> Key:
        """The table in effect at ``line`` (the last header at or above it)."""
        best: Key = ()
        for ln in sorted(self.table_at_line):
            if ln > line:
                break
            best = self.table_at_line[ln]
        return best


def key_on_line(text: str, line: int) -> Key:
    """The (possibly dotted) key written at the start of ``line``, or ``()``: used to name the
    field of a TOML syntax error, where the file cannot be parsed as a whole."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ()
    src = lines[line - 1]
    sc = _Scanner(src, LineIndex(""))
    sc.skip_ws()
    if sc.peek() in ("", "#", "["):
        return ()
    keys = sc.key()
    sc.skip_ws()
    return keys if sc.peek() == "=" else ()


class _Scanner:
    def __init__(self, text: str, index: LineIndex) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.index = index
        self.table: Key = ()
        # Resolved path of an array of tables -> how many times its header has been seen.
        self.aot: dict[Key, int] = {}

    # -- low level ---------------------------------------------------------------------------
    def peek(self, n: int = 1) -> str:
        return self.s[self.i : self.i + n]

    def eof(self) -> bool:
        return self.i >= len(self.s)

    def advance(self, n: int = 1) -> None:
        chunk = self.s[self.i : self.i + n]
        self.line += chunk.count("\n")
        self.i += len(chunk)

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t") and not self.eof():
            self.i += 1

    def skip_ws_nl_comments(self) -> None:
        while not self.eof():
            c = self.peek()
            if c in (" ", "\t", "\r", "\n"):
                self.advance()
            elif c == "#":
                self.skip_to_eol()
            else:
                return

    def skip_to_eol(self) -> None:
        end = self.s.find("\n", self.i)
        self.i = len(self.s) if end < 0 else end

    def record(self, key: Key, line: int, explicit: bool = True) -> None:
        if explicit:
            self.index.lines[key] = line
        else:
            self.index.lines.setdefault(key, line)

    # -- grammar -----------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            self.skip_ws_nl_comments()
            if self.eof():
                return
            start = self.i
            try:
                if self.peek() == "[":
                    self.header()
                else:
                    self.keyval(self.table)
            except _Stop:
                pass
            if self.i == start:  # no progress: skip the line rather than loop
                self.skip_to_eol()

    def header(self) -> None:
        line = self.line
        is_aot = self.peek(2) == "[["
        self.advance(2 if is_aot else 1)
        self.skip_ws()
        keys = self.key()
        self.skip_ws()
        self.advance(2 if is_aot else 1)
        resolved: list[str | int] = []
        for n, k in enumerate(keys):
            resolved.append(k)
            last = n == len(keys) - 1
            if tuple(resolved) in self.aot and not (is_aot and last):
                resolved.append(self.aot[tuple(resolved)] - 1)
            if not last:
                self.record(tuple(resolved), line, explicit=False)
        if is_aot:
            path = tuple(resolved)
            count = self.aot.get(path, 0)
            self.aot[path] = count + 1
            self.record(path, line, explicit=False)
            resolved.append(count)
        self.table = tuple(resolved)
        self.record(self.table, line)
        self.index.table_at_line[line] = self.table

    def key(self) -> Key:
        parts: list[str | int] = []
        while True:
            self.skip_ws()
            c = self.peek()
            if c == '"':
                parts.append(self.basic_string_key())
            elif c == "'":
                end = self.s.find("'", self.i + 1)
                if end < 0:
                    raise _Stop
                parts.append(self.s[self.i + 1 : end])
                self.i = end + 1
            else:
                m = _BARE.match(self.s, self.i)
                if not m:
                    raise _Stop
                parts.append(m.group(0))
                self.i = m.end()
            self.skip_ws()
            if self.peek() == ".":
                self.i += 1
                continue
            return tuple(parts)

    def basic_string_key(self) -> str:
        j = self.i + 1
        while j < len(self.s) and self.s[j] not in ('"', "\n"):
            j += 2 if self.s[j] == "\\" else 1
        raw = self.s[self.i + 1 : j]
        self.i = j + 1
        try:  # let tomllib decode the escapes, exactly as it did for the data
            return str(tomllib.loads(f'k = "{raw}"')["k"])
        except tomllib.TOMLDecodeError:
            return raw

    def keyval(self, base: Key) -> None:
        line = self.line
        keys = self.key()
        for n in range(1, len(keys)):
            self.record(base + keys[:n], line, explicit=False)
        path = base + keys
        self.record(path, line)
        self.skip_ws()
        if self.peek() != "=":
            raise _Stop
        self.i += 1
        self.skip_ws()
        self.value(path)

    def value(self, path: Key) -> None:
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            n = 0
            while True:
                self.skip_ws_nl_comments()
                if self.eof():
                    raise _Stop
                if self.peek() == "]":
                    self.advance()
                    return
                self.record(path + (n,), self.line)
                self.value(path + (n,))
                n += 1
                self.skip_ws_nl_comments()
                if self.peek() == ",":
                    self.advance()
        elif c == "{":
            self.advance()
            while True:
                self.skip_ws_nl_comments()
                if self.eof():
                    raise _Stop
                if self.peek() == "}":
                    self.advance()
                    return
                self.keyval(path)
                self.skip_ws_nl_comments()
                if self.peek() == ",":
                    self.advance()
        else:  # number, bool, date-time (which may hold a space): up to a delimiter
            j = self.i
            while j < len(self.s) and self.s[j] not in _SCALAR_END:
                j += 1
            if j == self.i:
                raise _Stop
            self.i = j

    def string(self) -> None:
        q = self.peek()
        if self.peek(3) == q * 3:
            j = self.i + 3
            while j < len(self.s):
                if q == '"' and self.s[j] == "\\":
                    j += 2
                    continue
                if self.s.startswith(q * 3, j):
                    j += 3
                    # Up to two quotes may end the content right before the delimiter.
                    extra = 0
                    while extra < 2 and j < len(self.s) and self.s[j] == q:
                        j += 1
                        extra += 1
                    break
                j += 1
            self.advance(j - self.i)
            return
        j = self.i + 1
        while j < len(self.s) and self.s[j] not in (q, "\n"):
            j += 2 if (q == '"' and self.s[j] == "\\") else 1
        self.advance(min(j + 1, len(self.s)) - self.i)


class _Stop(Exception):
    """Unexpected text: stop this statement, resume at the next line."""
