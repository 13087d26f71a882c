"""CSV rows: header required, quoted fields, physical line numbers, ragged rows as row errors."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import NamedTuple

from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers.base import RowSource, SourceRow
from monetate_ingest.formats.readers.decompress import UNDECODABLE, scrub, undecodable_bytes

_new = tuple.__new__
#: What the text layer counts as a line end inside a quoted cell (``newline=""``: untranslated).
_LINE_BREAK = re.compile("\r\n|\r|\n")


class CellBlock(NamedTuple):
    """Good CSV rows in file order: ``rows[i]`` (all of the header's width) starts on ``lines[i]``."""

    lines: Sequence[int]
    rows: list[list[str]]


class CsvRows(RowSource):
    """Rows of a CSV text stream (see :func:`monetate_ingest.formats.readers.open_rows`)."""

    format = "csv"

    def __init__(self, text: io.TextIOWrapper, delimiter: str = ",") -> None:
        super().__init__()
        self._reader = csv.reader(text, delimiter=delimiter, strict=True)
        self._undecodable = UNDECODABLE[0]
        self._header_line = 0

    def header(self) -> list[str]:
        if self.columns is None:
            self.columns = self._read_header()
        return self.columns

    def _read_header(self) -> list[str]:
        reader = self._reader
        try:
            cells: list[str] = []
            while not cells:
                cells = next(reader)
        except StopIteration:
            raise FileFormatError("the CSV file is empty: a header row is required", line=1) from None
        except csv.Error as exc:
            raise FileFormatError(f"the CSV header row cannot be read: {exc}", line=reader.line_num) from None
        line = reader.line_num
        self._header_line = line
        if UNDECODABLE[0] != self._undecodable and undecodable_bytes("".join(cells)):
            raise FileFormatError(
                f"line {line}: the CSV header is not valid UTF-8 ({undecodable_bytes(''.join(cells))})",
                line=line,
            )
        empty = [str(i + 1) for i, name in enumerate(cells) if not name.strip()]
        if empty:
            raise FileFormatError(
                f"the CSV header has empty column names at position {', '.join(empty)}", line=line
            )
        seen: set[str] = set()
        dupes = [name for name in cells if name in seen or seen.add(name)]  # type: ignore[func-returns-value]
        if dupes:
            names = ", ".join(repr(d) for d in dict.fromkeys(dupes))
            raise FileFormatError(f"the CSV header repeats column names {names}", line=line)
        return cells

    def _rows(self) -> Iterator[SourceRow]:
        return self._scan(cells=False)  # type: ignore[return-value]

    def cell_rows(self) -> Iterator[tuple[int, list[str]] | SourceRow]:
        """The rows as iteration yields them, except that a good row comes as a plain
        ``(line, cells)`` tuple instead of a :class:`SourceRow` with a ``{column: cell}`` dict
        (for :attr:`RowCoercer.coerce_cells <monetate_ingest.formats.coercion.RowCoercer.coerce_cells>`).
        Problem rows are the same :class:`SourceRow` objects; one item per row either way."""
        return self._scan(cells=True)

    def cell_blocks(self, size: int, skip: int = 0) -> Iterator[CellBlock | SourceRow]:
        """:meth:`cell_rows` with runs of good rows gathered into :class:`CellBlock` s.

        Rows are read ``size`` at a time in one C-level pass; a run of good rows comes as one
        block (its lines from the reader's line count, or — when a quoted cell spans lines —
        from the line breaks inside the cells). Problem rows come as in :meth:`cell_rows`, in
        order. The first ``skip`` rows (counted as :meth:`cell_rows` yields them) are dropped.
        """
        header = self.header()
        reader = self._reader
        width = len(header)
        while True:
            prev = reader.line_num
            chunk: list[list[str]] = []
            error: csv.Error | None = None
            try:
                chunk.extend(islice(reader, size))  # the rows before an error stay in ``chunk``
            except csv.Error as exc:
                error = exc
            if not chunk and error is None:
                return
            if (
                error is None
                and reader.line_num - prev == len(chunk)
                and set(map(len, chunk)) == {width}
                and self._decodable(chunk)
            ):  # the common case: one row per line, every row whole and valid UTF-8
                items: Iterator[CellBlock | SourceRow] = iter(
                    (CellBlock(range(prev + 1, prev + 1 + len(chunk)), chunk),)
                )
            else:
                items = self._sort_out(prev, chunk, width, error)
            for item in items:
                if skip:
                    if not isinstance(item, CellBlock):
                        skip -= 1
                        continue
                    if len(item.rows) <= skip:
                        skip -= len(item.rows)
                        continue
                    item = CellBlock(item.lines[skip:], item.rows[skip:])
                    skip = 0
                yield item

    def _decodable(self, chunk: list[list[str]]) -> bool:
        """No undecodable bytes in ``chunk`` (checked only once the decoder has met some)."""
        if UNDECODABLE[0] == self._undecodable:
            return True
        return not any(undecodable_bytes("\x00".join(cells)) for cells in chunk)

    def _sort_out(
        self, prev: int, chunk: list[list[str]], width: int, error: csv.Error | None
    ) -> Iterator[CellBlock | SourceRow]:
        """The rows of a chunk that is not all good, one line after ``prev``: runs of good rows as
        blocks, the others as :class:`SourceRow` problems, then the CSV error that ended the chunk."""
        line = prev + 1
        lines: list[int] = []
        good: list[list[str]] = []
        for cells in chunk:
            if len(cells) == width and self._decodable([cells]):
                lines.append(line)
                good.append(cells)
            elif cells:  # a blank line is no row
                if good:
                    yield CellBlock(lines, good)
                    lines, good = [], []
                yield self._problem_row(line, cells, width)
            line += 1 + sum(len(_LINE_BREAK.findall(cell)) for cell in cells if "\n" in cell or "\r" in cell)
        if good:
            yield CellBlock(lines, good)
        if error is not None:
            yield self._error_row(line, error)

    def _scan(self, *, cells: bool) -> Iterator[tuple[int, list[str]] | SourceRow]:
        header = self.header()
        reader = self._reader
        width = len(header)
        mark = self._undecodable
        flag = UNDECODABLE
        prev = reader.line_num
        while True:
            try:
                for found in reader:
                    if len(found) == width and flag[0] == mark:
                        if cells:
                            yield (prev + 1, found)
                        else:
                            row = dict(zip(header, found))  # noqa: B905 - strict= costs a slow keyword call per row
                            yield _new(SourceRow, (prev + 1, row, row, None))
                    elif found:
                        yield self._problem_row(prev + 1, found, width)
                    prev = reader.line_num
                return
            except csv.Error as exc:
                yield self._error_row(prev + 1, exc)
                prev = reader.line_num

    def _error_row(self, line: int, exc: csv.Error) -> SourceRow:
        """The row the CSV parser stopped at; a runaway field ends the file (FileFormatError)."""
        if "field larger than field limit" in str(exc):
            raise FileFormatError(
                f"line {line}: a field is longer than {csv.field_size_limit()} characters; "
                "probably a stray or unterminated quote — the rest of the file cannot be read",
                line=line,
            ) from None
        return SourceRow(line, None, None, self._csv_error(exc))

    def _problem_row(self, line: int, cells: list[str], width: int) -> SourceRow:
        bad = undecodable_bytes("".join(cells))
        if bad:
            return SourceRow(line, None, [scrub(c) for c in cells], f"row is not valid UTF-8 (bytes {bad})")
        if len(cells) != width:
            return SourceRow(line, None, cells, f"row has {len(cells)} fields but the header has {width}")
        row = dict(zip(self.header(), cells, strict=True))
        return SourceRow(line, row, row, None)

    @staticmethod
    def _csv_error(exc: csv.Error) -> str:
        text = str(exc)
        if "unexpected end of data" in text:
            return "row opens a quoted field that is never closed (unterminated quote at end of file)"
        if "expected after" in text:
            return f"row has a malformed quoted field ({text}); double any quote inside a quoted field"
        return f"row cannot be parsed as CSV: {text}"
