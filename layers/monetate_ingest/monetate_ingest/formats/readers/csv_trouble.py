"""Rows the CSV parser gave up on: what went wrong, which lines they took, where reading goes on.

``csv.reader`` raises for such a row after consuming its lines, so :class:`Trouble` keeps the
lines of the current chunk (a second branch of the line iterator, trailing the reader) and
re-reads them with :class:`~monetate_ingest.formats.readers.csv_scan.RowScan`:

- a field over the size limit: the row is rejected naming the field; if the field is quoted and
  goes on past the line where the parser stopped, its lines are read (not kept) up to its
  closing quote, so reading goes on with the row after it;
- the file ends inside a quoted field: if no line after the one where the quote opened holds
  anything, only that row is rejected; otherwise the quote swallowed rows that cannot be told
  apart any more, and the file fails naming the line (``FileFormatError``) — a report saying
  ``complete`` over rows never read would hide them;
- a malformed quote: the row is rejected with the lines it took (the parser goes on after them).
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from itertools import islice

from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers.base import SourceRow
from monetate_ingest.formats.readers.csv_scan import RowScan
from monetate_ingest.formats.readers.decompress import scrub

#: Characters of a broken row's text kept as its ``raw`` (and of each over-long cell).
PREVIEW_CHARS = 200


class Trouble:
    """The lines behind the reader, and what to make of a row the parser gave up on."""

    def __init__(self, lines: Iterator[str], history: Iterator[str], delimiter: str, max_bytes: int) -> None:
        self._lines = lines  # the branch the reader takes its lines from
        self._history = history  # the other branch: the lines after ``_kept``
        self._kept = 0  # the last line dropped from the history
        self._delimiter = delimiter
        self._max = max_bytes
        #: Lines read here past the reader, which its ``line_num`` does not count.
        self.offset = 0
        self.header: list[str] = []

    def forget(self, upto: int) -> None:
        """Drop the history's lines up to line ``upto`` (the reader is past them)."""
        count = upto - self._kept
        if count > 0:
            deque(islice(self._history, count), maxlen=0)
            self._kept = upto

    def row(self, line: int, end: int, exc: csv.Error) -> SourceRow:
        """The row that starts on ``line`` and made the parser raise ``exc`` on line ``end``."""
        message = str(exc)
        if "field larger than field limit" in message:
            return self._oversize(line, end)
        if "unexpected end of data" in message:
            lines = self._take(line, end)
            return self._unclosed(line, end, _scan(lines, self._delimiter, self._max), _preview(lines))
        span = f"; lines {line}-{end} were read as this one row" if end > line else ""
        if "expected after" in message:
            reason = f"row has a malformed quoted field ({message}); double any quote inside a quoted field"
        else:
            reason = f"row cannot be parsed as CSV: {message}"
        return SourceRow(line, None, _preview(self._take(line, end)), reason + span)

    def too_long(self, index: int | None, size: str | None = None) -> str:
        """The reason of a row with a field over the limit (``index``: the field, when known)."""
        what = "a field" if index is None else f"field {self._column(index)}"
        found = f" is {size}," if size else " is"
        return f"{what}{found} longer than the limit of {self._max:,} bytes (MAX_FIELD_BYTES)"

    def _take(self, first: int, last: int) -> list[str]:
        """Lines ``first`` to ``last`` (the reader is past them), dropped from the history."""
        self.forget(first - 1)
        lines = list(islice(self._history, last - first + 1))
        self._kept = last
        return lines

    def _oversize(self, line: int, end: int) -> SourceRow:
        lines = self._take(line, end)
        scan = _scan(lines, self._delimiter, self._max)
        last = end
        while scan.open:  # a quoted field goes on: read its lines (never holding them) to its end
            more = next(self._lines, None)
            if more is None:
                break
            next(self._history, None)
            self._kept += 1
            self.offset += 1
            last += 1
            scan.feed(more)
        if scan.open:
            return self._unclosed(line, last, scan, _preview(lines))
        reason = self.too_long(scan.big_field)
        if last > line:
            reason += f"; the row (lines {line}-{last}) was skipped"
        return SourceRow(line, None, _preview(lines), reason)

    def _unclosed(self, line: int, last: int, scan: RowScan, preview: str) -> SourceRow:
        """A quoted field that the end of the file leaves open (FileFormatError if it swallowed rows)."""
        where = f" in column {self._column(scan.fields)}"
        if not scan.swallowed:
            return SourceRow(
                line,
                None,
                preview,
                f"row opens a quoted field{where} that is never closed (unterminated quote)",
            )
        opened = line + scan.quote_line
        raise FileFormatError(
            f"line {opened}: unterminated quote — a quoted field{where} opens there and never closes, so "
            f"lines {opened}-{last} were read as one field and the rows among them cannot be told apart. "
            'Close the quote (a quote inside a quoted field is written "") and upload the file again',
            line=opened,
        )

    def _column(self, index: int) -> str:
        if index < len(self.header):
            return f"{index + 1} ({self.header[index]!r})"
        return f"{index + 1} (beyond the header's {len(self.header)})"


def _scan(lines: list[str], delimiter: str, max_chars: int) -> RowScan:
    scan = RowScan(delimiter, max_chars)
    for text in lines:
        scan.feed(text)
    return scan


def _preview(lines: list[str]) -> str:
    """The start of a row's text, for its ``raw``."""
    text = ""
    for piece in lines:
        text += piece[: PREVIEW_CHARS + 1 - len(text)]
        if len(text) > PREVIEW_CHARS:
            return scrub(text[:PREVIEW_CHARS]) + "…"
    return scrub(text)
