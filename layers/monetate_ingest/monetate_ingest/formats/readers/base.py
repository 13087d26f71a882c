"""The row type every reader yields and the common shape of a row source."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal, NamedTuple

FileFormat = Literal["csv", "jsonl", "json"]


class SourceRow(NamedTuple):
    """One row as read: ``values`` is None when ``error`` says why the row cannot be used.

    ``line`` is the 1-based physical line where the row starts in the decompressed file (the CSV
    header is line 1); for a JSON array it is the element's 1-based index. ``raw`` is the row as
    read (CSV: ``{header: cell}`` or the list of cells when ragged; JSON lines: the line's text;
    JSON array: the element), or None when nothing usable was read (an unterminated quote).
    """

    line: int
    values: dict[str, Any] | None
    raw: Any
    error: str | None


class RowSource:
    """An iterable of :class:`SourceRow` over one file; iterate it once."""

    format: FileFormat

    def __init__(self) -> None:
        self.columns: list[str] | None = None
        #: Called by :meth:`close` (e.g. stopping a read-ahead thread).
        self.closers: list[Callable[[], None]] = []

    def close(self) -> None:
        """Release what reading holds; safe to call more than once."""
        while self.closers:
            self.closers.pop()()

    def header(self) -> list[str] | None:
        """The CSV header (read now if needed); None for JSON formats."""
        return self.columns

    def __iter__(self) -> Iterator[SourceRow]:
        return self._rows()

    def _rows(self) -> Iterator[SourceRow]:
        raise NotImplementedError
