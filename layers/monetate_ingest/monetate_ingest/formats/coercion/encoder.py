"""CSV cells straight to a row's JSON bytes, one row at a time or a block of rows at once.

Both paths give exactly ``encode_row(coerce_cells(cells)).encode()`` (compact, UTF-8) and the
same :class:`RowError`. A row whose mapped cells are all non-empty is one ``%`` format of a fixed
template: STRING cells go through the C string escaper, typed cells through a per-column memo of
JSON fragments (:class:`Fragments`). :meth:`CellsEncoder.block` does that column by column over
many rows, so the per-row work is a handful of C-level ``map`` passes instead of Python calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from operator import call, itemgetter
from typing import Any

from monetate_ingest.formats.coercion import plan
from monetate_ingest.formats.coercion.converters import Absent, Invalid
from monetate_ingest.formats.coercion.plan import CellsCoerceFn, Step
from monetate_ingest.formats.exceptions import RowError

BlockEncodeFn = Callable[[list[list[str]]], "list[bytes] | None"]

_escape: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]
_strip = str.strip
_encode = str.encode


class Fallback(Exception):
    """A cell the direct encoder does not handle (a converter found nothing left in it)."""


class Fragments(dict[str, str]):
    """A typed column's memo: stripped cell → the JSON text of its converted value.

    A miss converts the cell (``__missing__``, so a hit is one C-level lookup); cells longer than
    ``MEMO_MAX_CHARS`` are converted every time; the memo is cleared when it reaches ``MEMO_SIZE``.
    A column whose memo fills with a hit rate under ``MEMO_MIN_HIT_RATE`` (a unique id, a price)
    stops memoising: its slot in ``fns`` becomes :meth:`convert`, so it no longer pays for the
    failed lookup, the store and the clearing on every row.
    """

    __slots__ = ("encode", "fns", "name", "rows", "since", "slot", "text")

    def __init__(
        self,
        name: str,
        text: Callable[[str], Any],
        encode: Callable[[Any], str],
        fns: list[Callable[[str], str]] | None = None,
        slot: int = 0,
        rows: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.text = text
        self.encode = encode
        self.fns = fns
        self.slot = slot
        self.rows = rows
        self.since = 0

    def convert(self, cell: str) -> str:
        """The cell's JSON fragment, not memoised."""
        try:
            return self.encode(self.text(cell))
        except Invalid as exc:
            raise RowError(f"field {self.name!r} {exc}", field=self.name) from None
        except Absent:
            raise Fallback from None

    def __missing__(self, cell: str) -> str:
        fragment = self.convert(cell)
        if len(cell) <= plan.MEMO_MAX_CHARS:
            if len(self) >= plan.MEMO_SIZE:
                self.clear()
                if self._low_hit_rate():
                    return fragment
            self[cell] = fragment
        return fragment

    def _low_hit_rate(self) -> bool:
        """At a clear: were most lookups since the last one misses? If so, switch to :meth:`convert`."""
        if self.rows is None or self.fns is None:
            return False
        rows = self.rows()
        lookups, self.since = rows - self.since, rows
        if lookups and plan.MEMO_SIZE / lookups > 1 - plan.MEMO_MIN_HIT_RATE:
            self.fns[self.slot] = self.convert
            return True
        return False


class CellsEncoder:
    """Encodes CSV rows given as cells in ``columns`` order (build with :func:`compile_cells_encoder`)."""

    def __init__(
        self,
        steps: list[Step],
        columns: list[str],
        coerce_cells: CellsCoerceFn,
        encode: Callable[[Any], str],
        required: frozenset[str] = frozenset(),
    ) -> None:
        names = [name for _, name, _, _ in steps]
        self._template = "{" + ",".join(_escape(name).replace("%", "%%") + ":%s" for name in names) + "}"
        #: Per mapped column: its ``"name":`` (for rows that leave some field out) and whether a row
        #: must have it (an empty cell there is a reject: the row path says so).
        self._keys = [_escape(name) + ":" for name in names]
        self._needed = [name in required for name in names]
        self._coerce_cells = coerce_cells
        self._encode = encode
        self._seen = 0  # rows encoded: a memo's hit rate is judged against it (see Fragments)
        #: Per mapped column: the C escaper (STRING) or a memo's ``__getitem__`` (or ``convert``).
        self.fns: list[Callable[[str], str]] = []
        for slot, (_, name, text, _) in enumerate(steps):
            memo = Fragments(name, text, encode, self.fns, slot, self._rows) if text is not None else None
            self.fns.append(_escape if memo is None else memo.__getitem__)
        positions = [columns.index(key) for key, _, _, _ in steps]
        self._positions: list[int] | None = None if positions == list(range(len(columns))) else positions
        self._pick: Callable[[Sequence[str]], Any] | None = None
        if self._positions is not None:
            self._pick = (
                itemgetter(*positions) if len(positions) > 1 else (lambda cells: (cells[positions[0]],))
            )

    def _rows(self) -> int:
        return self._seen

    def _slow(self, cells: list[str]) -> bytes:
        row = self._coerce_cells(cells)
        try:
            return self._encode(row).encode()
        except (UnicodeEncodeError, TypeError, ValueError) as exc:
            raise RowError(f"row cannot be encoded as JSON: {exc}") from None

    def row(self, cells: list[str]) -> bytes:
        """One row's UTF-8 JSON; raises :class:`RowError` naming the field."""
        self._seen += 1
        pick = self._pick
        stripped = tuple(map(_strip, cells if pick is None else pick(cells)))
        if "" in stripped:
            return self._slow(cells)
        try:
            return (self._template % tuple(map(call, self.fns, stripped))).encode()
        except Fallback:
            return self._slow(cells)
        except UnicodeEncodeError as exc:
            raise RowError(f"row cannot be encoded as JSON: {exc}") from None

    def block(self, rows: list[list[str]]) -> list[bytes] | None:
        """Every row's UTF-8 JSON, column by column; None if any row needs :meth:`row`.

        ``rows`` must all have ``len(columns)`` cells. When no mapped cell is empty each row is
        one ``%`` of the template; empty cells in optional columns leave their fields out (the
        rows of such a block are joined from their present ``"name":value`` pieces). None (not an
        error) when a required column has an empty cell, a converter refuses a cell or finds
        nothing in it, or text cannot be encoded: the caller then takes the rows one by one and
        :meth:`row` says which is wrong and why.
        """
        self._seen += len(rows)
        columns: list[tuple[str, ...]] = list(zip(*rows))  # noqa: B905 - rows have equal lengths
        if self._positions is not None:
            columns = [columns[p] for p in self._positions]
        stripped = [list(map(_strip, column)) for column in columns]
        try:
            if all(map(all, stripped)):  # the common case: every field present
                fragments = [map(fn, cells) for fn, cells in zip(self.fns, stripped)]  # noqa: B905
                return list(map(_encode, map(self._template.__mod__, zip(*fragments))))  # noqa: B905
            return self._block_with_gaps(stripped)
        except (RowError, Fallback, UnicodeEncodeError):
            return None

    def _block_with_gaps(self, stripped: list[list[str]]) -> list[bytes] | None:
        """:meth:`block` when some optional cells are empty: those fields are left out."""
        pieces: list[list[str]] = []
        for fn, key, needed, cells in zip(self.fns, self._keys, self._needed, stripped):  # noqa: B905
            if all(cells):
                pieces.append(list(map(key.__add__, map(fn, cells))))
            elif needed:
                return None  # a row without its identifier, unique key or required field
            else:
                pieces.append([key + fn(cell) if cell else "" for cell in cells])
        return [("{" + ",".join(filter(None, row)) + "}").encode() for row in zip(*pieces)]  # noqa: B905


def compile_cells_encoder(
    steps: list[Step],
    required: list[tuple[str, str]],
    columns: list[str],
    coerce_cells: CellsCoerceFn,
    encode: Callable[[Any], str],
) -> CellsEncoder | None:
    """A :class:`CellsEncoder` for this plan, equivalent to ``encode(coerce_cells(cells)).encode()``.

    ``encode`` is the row encoder (compact, ``ensure_ascii=False``). None when the plan cannot be
    encoded so (no steps, repeated columns or fields, a required field with no column).
    """
    names = [name for _, name, _, _ in steps]
    if (
        not steps
        or len(set(columns)) != len(columns)
        or len(set(names)) != len(names)
        or not {name for name, _ in required} <= set(names)
    ):
        return None
    return CellsEncoder(steps, columns, coerce_cells, encode, frozenset(name for name, _ in required))
