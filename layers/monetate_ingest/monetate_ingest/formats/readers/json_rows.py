"""JSON lines and JSON arrays of objects, read incrementally.

A value that cannot be decoded — broken JSON, ``NaN``/``Infinity``, nesting beyond the parser's
limit, a whole number of thousands of digits, invalid UTF-8 — is that row's error (its line, or
the element's index). In a JSON array, an element whose brackets do not tell where it ends (or
broken JSON, which may hide the next element) makes the rest unreadable: the file fails there,
after the elements before it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from typing import Any

from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers.base import RowSource, SourceRow
from monetate_ingest.formats.readers.decompress import UNDECODABLE, scrub, undecodable_bytes
from monetate_ingest.formats.readers.json_values import (
    DECODE_ERRORS,
    DECODER,
    Unbalanced,
    ValueEnd,
    undecodable,
)

_decode = DECODER.decode
_raw_decode = DECODER.raw_decode
_WS = re.compile(r"[ \t\n\r]*")
TEXT_CHUNK = 1 << 16
#: Largest single array element accepted (characters); bounds memory on malformed input.
MAX_ELEMENT_CHARS = 32 * 1024 * 1024
_new = tuple.__new__


def describe(value: Any) -> str:
    """'a JSON array', 'a JSON string' … for messages."""
    if isinstance(value, list):
        return "a JSON array"
    if isinstance(value, str):
        return "a JSON string"
    if isinstance(value, bool):
        return "a JSON boolean"
    if value is None:
        return "JSON null"
    return "a JSON number"


class JsonLinesRows(RowSource):
    """One JSON object per non-blank line."""

    format = "jsonl"

    def __init__(self, text: io.TextIOWrapper) -> None:
        super().__init__()
        self._text = text
        self._mark = UNDECODABLE[0]

    def _rows(self) -> Iterator[SourceRow]:
        flag = UNDECODABLE
        mark = self._mark
        for number, line in enumerate(self._text, 1):
            body = line.strip()
            if not body:
                continue
            if flag[0] != mark:
                bad = undecodable_bytes(body)
                if bad:
                    yield SourceRow(number, None, scrub(body), f"line is not valid UTF-8 (bytes {bad})")
                    continue
            try:
                value = _decode(body)
            except DECODE_ERRORS as exc:
                yield SourceRow(number, None, body, f"line {undecodable(exc)}")
                continue
            if value.__class__ is dict:
                yield _new(SourceRow, (number, value, body, None))
            else:
                yield SourceRow(number, None, body, f"line is {describe(value)}, expected an object")


class JsonArrayRows(RowSource):
    """Elements of one top-level JSON array, split incrementally with ``raw_decode``."""

    format = "json"

    def __init__(self, text: io.TextIOWrapper) -> None:
        super().__init__()
        self._text = text
        self._mark = UNDECODABLE[0]
        self._buf = ""
        self._pos = 0
        self._eof = False

    def _more(self) -> bool:
        """Append a chunk to the buffer (dropping what was consumed); False at end of file."""
        if self._eof:
            return False
        chunk = self._text.read(TEXT_CHUNK)
        if not chunk:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    def _skip_ws(self) -> str:
        """The next significant character ('' at end of file), leaving ``_pos`` on it."""
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf):
                return self._buf[self._pos]
            if not self._more():
                return ""

    def _rows(self) -> Iterator[SourceRow]:
        first = self._skip_ws()
        if first != "[":
            what = "is empty" if not first else f"starts with {first!r}"
            raise FileFormatError(
                f"a .json file must hold one JSON array of objects, but this one {what} "
                "(use .jsonl for one object per line)",
                line=1,
            )
        self._pos += 1
        index = 0
        if self._skip_ws() == "]":
            self._pos += 1
            self._expect_end()
            return
        flag = UNDECODABLE
        mark = self._mark
        while True:
            index += 1
            value, start, end, problem = self._element(index)
            if problem is None and flag[0] != mark:
                bad = undecodable_bytes(self._buf[start:end])
                if bad:
                    problem = f"is not valid UTF-8 (bytes {bad})"
            if problem is not None:
                yield SourceRow(index, None, scrub(self._buf[start:end].strip()), f"element {problem}")
            elif value.__class__ is dict:
                yield _new(SourceRow, (index, value, value, None))
            else:  # a null element too: nothing is dropped unseen
                yield SourceRow(index, None, value, f"element is {describe(value)}, expected an object")
            sep = self._skip_ws()
            self._pos += 1
            if sep == "]":
                self._expect_end()
                return
            if sep != ",":
                found = "the end of the file" if not sep else repr(sep)
                raise FileFormatError(
                    f"JSON array element {index} is followed by {found}, expected ',' or ']'", line=index
                )

    def _element(self, index: int) -> tuple[Any, int, int, str | None]:
        """Decode the element at ``_pos``; reads more text until it is complete. The last item
        says why the element cannot be used when it was skipped instead of decoded."""
        self._skip_ws()
        while True:
            start = self._pos
            try:
                value, end = _raw_decode(self._buf, start)
            except json.JSONDecodeError as exc:
                near_end = exc.pos + 64 >= len(self._buf) or exc.msg.startswith("Unterminated string")
                if not near_end or not self._grow(index):
                    raise FileFormatError(
                        f"JSON array element {index} is not valid JSON: {exc.msg}; the rest of the "
                        "file cannot be read (the elements before it were read)",
                        line=index,
                    ) from None
                continue
            except DECODE_ERRORS as exc:  # one bad value: its brackets still say where it ends
                problem = undecodable(exc)
                start, end = self._skip(index, problem)
                return None, start, end, problem
            if end < len(self._buf) or not self._grow(index):  # a number may continue in the next chunk
                self._pos = end
                return value, start, end, None

    def _skip(self, index: int, problem: str) -> tuple[int, int]:
        """Move past the element at ``_pos`` without decoding it; its (start, end) in ``_buf``."""
        finder = ValueEnd()
        while True:
            try:
                end = finder.find(self._buf, self._pos)
            except Unbalanced as exc:
                raise FileFormatError(
                    f"JSON array element {index} {problem}, and where it ends cannot be told ({exc}); "
                    "the rest of the file cannot be read (the elements before it were read)",
                    line=index,
                ) from None
            if end is not None:
                start, self._pos = self._pos, end
                return start, end
            if not self._grow(index):
                raise FileFormatError(
                    f"JSON array element {index} {problem}, and the file ends inside it", line=index
                )

    def _grow(self, index: int) -> bool:
        if len(self._buf) - self._pos > MAX_ELEMENT_CHARS:
            raise FileFormatError(
                f"JSON array element {index} is longer than {MAX_ELEMENT_CHARS} characters or malformed",
                line=index,
            )
        return self._more()

    def _expect_end(self) -> None:
        if self._skip_ws():
            raise FileFormatError("the JSON array is followed by more data; expected the end of the file")
