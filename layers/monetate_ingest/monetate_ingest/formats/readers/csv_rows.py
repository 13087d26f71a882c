"""CSV rows: header required, quoted fields, physical line numbers, broken rows as row errors.

Rows are read in chunks by the C parser (``csv.reader``); a chunk of whole, valid rows of one line
each is one :class:`CellBlock`, anything else is sorted out row by row. A row that the parser
gives up on — a field over ``max_field_bytes``, a malformed quote — is that row's error, naming
the lines it took, and reading goes on after it: an oversize quoted field is read past (never
held) to its closing quote. A quote that never closes and swallows the lines after it fails the
file naming its line (:mod:`monetate_ingest.formats.readers.csv_trouble`); nothing is counted
that was not read as a row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from itertools import islice, tee
from typing import NamedTuple

from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers.base import RowSource, SourceRow
from monetate_ingest.formats.readers.csv_trouble import PREVIEW_CHARS, Trouble
from monetate_ingest.formats.readers.decompress import UNDECODABLE, LongLines, scrub, undecodable_bytes

#: The longest CSV field accepted, in bytes of UTF-8 (``MAX_FIELD_BYTES``): a row with a longer
#: one is rejected and reading goes on. It also bounds the memory one row can take.
DEFAULT_MAX_FIELD_BYTES = 1024 * 1024
#: Rows per C-level read when rows are taken one by one (:meth:`CsvRows.cell_rows`, iteration).
ROW_CHUNK = 256

_new = tuple.__new__
#: What the text layer counts as a line end inside a quoted cell (``newline=""``: untranslated).
_LINE_BREAK = re.compile("\r\n|\r|\n")


class CellBlock(NamedTuple):
    """Good CSV rows in file order: ``rows[i]`` (all of the header's width) starts on ``lines[i]``."""

    lines: Sequence[int]
    rows: list[list[str]]


class CsvRows(RowSource):
    """Rows of a CSV text stream (see :func:`monetate_ingest.formats.readers.open_rows`).

    ``long_lines`` is the byte stream's :class:`LongLines` at ``max_field_bytes`` (without it,
    fields are limited in characters only). The limit is the ``csv`` module's process-wide
    ``field_size_limit``, set before every read.
    """

    format = "csv"

    def __init__(
        self,
        text: io.TextIOWrapper,
        delimiter: str = ",",
        *,
        max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
        long_lines: LongLines | None = None,
    ) -> None:
        super().__init__()
        if max_field_bytes < 1:
            raise ValueError(f"max_field_bytes must be at least 1, not {max_field_bytes}")
        # The reader takes lines from one branch; the other trails it by at most a chunk, so the
        # lines of a row the parser gave up on can be read again (Trouble).
        lines, history = tee(text)
        self._reader = csv.reader(lines, delimiter=delimiter, strict=True)
        self._max = max_field_bytes
        self._quarter = max_field_bytes // 4  # a field of fewer characters is within the limit
        self._long = long_lines if long_lines is not None else LongLines(max_field_bytes)
        self._long_mark = self._long.count
        self._undecodable = UNDECODABLE[0]
        self._trouble = Trouble(lines, history, delimiter, max_field_bytes)
        self._header_line = 0

    def header(self) -> list[str]:
        if self.columns is None:
            csv.field_size_limit(self._max)
            self.columns = self._read_header()
            self._trouble.header = self.columns
            self._trouble.forget(self._reader.line_num)
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
        header = self.header()
        for item in self._items(ROW_CHUNK):
            if item.__class__ is CellBlock:
                for line, cells in zip(item.lines, item.rows):  # type: ignore[union-attr]  # noqa: B905
                    row = dict(zip(header, cells))  # noqa: B905 - strict= costs a slow keyword call per row
                    yield _new(SourceRow, (line, row, row, None))
            else:
                yield item  # type: ignore[misc]

    def cell_rows(self) -> Iterator[tuple[int, list[str]] | SourceRow]:
        """The rows as iteration yields them, except that a good row comes as a plain
        ``(line, cells)`` tuple instead of a :class:`SourceRow` with a ``{column: cell}`` dict
        (for :attr:`RowCoercer.coerce_cells <monetate_ingest.formats.coercion.RowCoercer.coerce_cells>`).
        Problem rows are the same :class:`SourceRow` objects; one item per row either way."""
        for item in self._items(ROW_CHUNK):
            if isinstance(item, CellBlock):
                yield from zip(item.lines, item.rows)  # noqa: B905 - same length
            else:
                yield item

    def cell_blocks(self, size: int, skip: int = 0) -> Iterator[CellBlock | SourceRow]:
        """:meth:`cell_rows` with runs of good rows gathered into :class:`CellBlock` s.

        Rows are read ``size`` at a time in one C-level pass; a run of good rows comes as one
        block (its lines from the reader's line count, or — when a quoted cell spans lines —
        from the line breaks inside the cells). Problem rows come as in :meth:`cell_rows`, in
        order. The first ``skip`` rows (counted as :meth:`cell_rows` yields them) are dropped.
        """
        for item in self._items(size):
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

    def _items(self, size: int) -> Iterator[CellBlock | SourceRow]:
        """Every row in order: runs of good rows as blocks, the others as :class:`SourceRow`."""
        width = len(self.header())
        reader = self._reader
        trouble = self._trouble
        limit = csv.field_size_limit
        while True:
            limit(self._max)
            prev = reader.line_num + trouble.offset
            chunk: list[list[str]] = []
            error: csv.Error | None = None
            try:
                chunk.extend(islice(reader, size))  # the rows before an error stay in ``chunk``
            except csv.Error as exc:
                error = exc
            if not chunk and error is None:
                return
            end = reader.line_num + trouble.offset
            if (
                error is None
                and end - prev == len(chunk)
                and set(map(len, chunk)) == {width}
                and self._decodable(chunk)
                and self._long.count == self._long_mark
            ):  # the common case: one row per line, every row whole, valid UTF-8 and within the limit
                yield CellBlock(range(prev + 1, end + 1), chunk)
            else:
                yield from self._sort_out(prev, chunk, width, error, end)
            trouble.forget(reader.line_num + trouble.offset)

    def _decodable(self, chunk: list[list[str]]) -> bool:
        """No undecodable bytes in ``chunk`` (checked only once the decoder has met some)."""
        if UNDECODABLE[0] == self._undecodable:
            return True
        return not any(undecodable_bytes("\x00".join(cells)) for cells in chunk)

    def _fits(self, cells: list[str]) -> bool:
        """No field of ``cells`` is over the limit in bytes."""
        quarter = self._quarter
        if max(map(len, cells), default=0) <= quarter:
            return True
        return self._too_long(cells) is None

    def _too_long(self, cells: list[str]) -> int | None:
        """The index of the first field over the limit in bytes."""
        for index, cell in enumerate(cells):
            if len(cell) > self._quarter and len(cell.encode("utf-8", "surrogatepass")) > self._max:
                return index
        return None

    def _sort_out(
        self, prev: int, chunk: list[list[str]], width: int, error: csv.Error | None, end: int
    ) -> Iterator[CellBlock | SourceRow]:
        """The rows of a chunk that is not all good, one line after ``prev``: runs of good rows as
        blocks, the others as :class:`SourceRow` problems, then the row the parser gave up on
        (which ends on line ``end``)."""
        line = prev + 1
        lines: list[int] = []
        good: list[list[str]] = []
        for cells in chunk:
            if len(cells) == width and self._decodable([cells]) and self._fits(cells):
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
            yield self._trouble.row(line, end, error)

    def _problem_row(self, line: int, cells: list[str], width: int) -> SourceRow:
        bad = undecodable_bytes("".join(cells))
        if bad:
            return SourceRow(line, None, [scrub(c) for c in cells], f"row is not valid UTF-8 (bytes {bad})")
        if len(cells) != width:
            return SourceRow(line, None, cells, f"row has {len(cells)} fields but the header has {width}")
        index = self._too_long(cells)
        if index is None:  # not reached: a whole, decodable row is a problem only for its size
            row = dict(zip(self.header(), cells, strict=True))
            return SourceRow(line, row, row, None)
        size = len(cells[index].encode("utf-8", "surrogatepass"))
        cut = {
            name: cell if len(cell) <= PREVIEW_CHARS else cell[:PREVIEW_CHARS] + "…"
            for name, cell in zip(self.header(), cells, strict=True)
        }
        return SourceRow(line, None, cut, self._trouble.too_long(index, f"{size:,} bytes"))
