"""CSV rows: header required, quoted fields, physical line numbers, ragged rows as row errors."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from ..errors import FileFormatError
from .base import RowSource, SourceRow
from .decompress import UNDECODABLE, scrub, undecodable_bytes

_new = tuple.__new__


class CsvRows(RowSource):
    """Rows of a CSV text stream (see :func:`monetate_ingest.readers.open_rows`)."""

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
        (for :attr:`RowCoercer.coerce_cells <monetate_ingest.coercion.RowCoercer.coerce_cells>`).
        Problem rows are the same :class:`SourceRow` objects; one item per row either way."""
        return self._scan(cells=True)

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
                if "field larger than field limit" in str(exc):
                    raise FileFormatError(
                        f"line {prev + 1}: a field is longer than {csv.field_size_limit()} characters; "
                        "probably a stray or unterminated quote — the rest of the file cannot be read",
                        line=prev + 1,
                    ) from None
                yield SourceRow(prev + 1, None, None, self._csv_error(exc))
                prev = reader.line_num

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
