"""Compile a fixed column plan (CSV) into a fast ``coerce(raw)`` function.

The common case runs in C: fetch every column with one ``itemgetter``, strip them all with
``map``, zip them onto field names; only typed (non-STRING) fields then take a Python call each —
or only a dict lookup: converters are pure, and typed columns repeat their values (flags, tags,
dates, small numbers), so each typed column memoises its short cells' results (bounded: cleared
when full). Anything unusual (a missing key, a non-string value) falls back to the generic step loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from operator import call, itemgetter
from typing import Any

from ..errors import RowError
from .converters import Absent, Invalid

#: Entries a typed column's memo holds before it is cleared; cells longer than MEMO_MAX_CHARS are
#: never memoised, so a memo stays well under 4 MB.
MEMO_SIZE = 16_384
MEMO_MAX_CHARS = 64
#: A memo that fills with fewer hits than this share of its lookups is dropped for its column.
MEMO_MIN_HIT_RATE = 0.5
_MISS = object()

Step = tuple[str, str, Any, Any]  # (source key, field name, text converter | None, value converter)
CoerceFn = Callable[[dict[str, Any]], dict[str, Any]]
CellsCoerceFn = Callable[[list[str]], dict[str, Any]]
CellsEncodeFn = Callable[[list[str]], bytes]


def run_steps(steps: list[Step], required: list[tuple[str, str]], raw: dict[str, Any]) -> dict[str, Any]:
    """The generic coercion: each step on ``raw``, then the required-field check."""
    out: dict[str, Any] = {}
    for key, name, text, value in steps:
        cell = raw.get(key)
        if cell.__class__ is str:
            cell = cell.strip()
            if not cell:
                continue
            if text is not None:
                try:
                    cell = text(cell)
                except Invalid as exc:
                    raise RowError(f"field {name!r} {exc}", field=name) from None
                except Absent:
                    continue
            out[name] = cell
        elif cell is not None:
            try:
                out[name] = value(cell)
            except Invalid as exc:
                raise RowError(f"field {name!r} {exc}", field=name) from None
            except Absent:
                continue
    check_required(required, out)
    return out


def check_required(required: list[tuple[str, str]], out: dict[str, Any]) -> None:
    for name, message in required:
        if name not in out:
            raise RowError(message, field=name)


def compile_plan(steps: list[Step], required: list[tuple[str, str]]) -> CoerceFn:
    """A function equivalent to :func:`run_steps` with these steps, faster on string cells."""
    keys = [key for key, _, _, _ in steps]

    def slow(raw: dict[str, Any]) -> dict[str, Any]:
        return run_steps(steps, required, raw)

    if not keys:
        return slow
    fetch: Callable[[dict[str, Any]], tuple[Any, ...]]
    fetch = itemgetter(*keys) if len(keys) > 1 else (lambda raw: (raw[keys[0]],))
    build = _builder(steps, required)
    strip = str.strip

    def coerce(raw: dict[str, Any]) -> dict[str, Any]:
        try:
            cells = tuple(map(strip, fetch(raw)))
        except (KeyError, TypeError):  # a missing column or a non-string value
            return slow(raw)
        return build(cells)

    return coerce


def compile_cells_plan(
    steps: list[Step], required: list[tuple[str, str]], columns: list[str]
) -> CellsCoerceFn | None:
    """Like :func:`compile_plan`, for a CSV row given as its list of cells in ``columns`` order.

    Saves building a ``{column: cell}`` dict only to take it apart again. None when ``columns``
    repeat a name or no column maps to a field (the dict path handles those).
    """
    if not steps or len(set(columns)) != len(columns):
        return None
    positions = [columns.index(key) for key, _, _, _ in steps]
    build = _builder(steps, required)
    strip = str.strip
    if positions == list(range(len(columns))):  # every column, in order: no need to pick

        def coerce_all(cells: list[str]) -> dict[str, Any]:
            return build(tuple(map(strip, cells)))

        return coerce_all
    pick: Callable[[list[str]], tuple[str, ...]]
    pick = itemgetter(*positions) if len(positions) > 1 else (lambda cells: (cells[positions[0]],))

    def coerce_some(cells: list[str]) -> dict[str, Any]:
        return build(tuple(map(strip, pick(cells))))

    return coerce_some


def _builder(
    steps: list[Step], required: list[tuple[str, str]]
) -> Callable[[tuple[str, ...]], dict[str, Any]]:
    """``build(cells)``: the row from the stripped string cells of ``steps``, in their order."""
    names = [name for _, name, _, _ in steps]
    typed: list[tuple[str, Any, dict[str, Any]]] = [
        (name, text, {}) for _, name, text, _ in steps if text is not None
    ]
    needed = frozenset(name for name, _ in required)

    def build(cells: tuple[str, ...]) -> dict[str, Any]:
        if "" in cells:
            out = {name: cell for name, cell in zip(names, cells) if cell}  # noqa: B905
        else:
            out = dict(zip(names, cells))  # noqa: B905 - same length; strict= is a slow keyword call
        for name, text, memo in typed:
            cell = out.get(name)
            if cell is not None:
                value = memo.get(cell, _MISS)
                if value is _MISS:
                    try:
                        value = text(cell)
                    except Invalid as exc:
                        raise RowError(f"field {name!r} {exc}", field=name) from None
                    except Absent:
                        del out[name]
                        continue
                    if len(cell) <= MEMO_MAX_CHARS:
                        if len(memo) >= MEMO_SIZE:
                            memo.clear()
                        memo[cell] = value
                out[name] = value
        if needed and not out.keys() >= needed:
            check_required(required, out)
        return out

    return build


class _Fallback(Exception):
    """A cell the direct encoder does not handle (a converter found nothing left in it)."""


class _Fragments(dict[str, str]):
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
            raise _Fallback from None

    def __missing__(self, cell: str) -> str:
        fragment = self.convert(cell)
        if len(cell) <= MEMO_MAX_CHARS:
            if len(self) >= MEMO_SIZE:
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
        if lookups and MEMO_SIZE / lookups > 1 - MEMO_MIN_HIT_RATE:
            self.fns[self.slot] = self.convert
            return True
        return False


def compile_cells_encoder(
    steps: list[Step],
    required: list[tuple[str, str]],
    columns: list[str],
    coerce_cells: CellsCoerceFn,
    encode: Callable[[Any], str],
) -> CellsEncodeFn | None:
    """``encode_cells(cells)``: the UTF-8 JSON of ``coerce_cells(cells)``, built without the dict.

    ``encode`` is the row encoder (compact, ``ensure_ascii=False``); the result is exactly
    ``encode(coerce_cells(cells)).encode()``, and errors are the same :class:`RowError`. When every
    mapped cell is non-empty the row is one ``%`` format of a fixed template: STRING cells go
    through the C string escaper, typed cells through a per-column memo of JSON fragments. Rows
    with empty cells (fields left out) take ``coerce_cells`` and ``encode``. None when the plan
    cannot be encoded so (no steps, repeated columns or fields, a required field with no column).
    """
    names = [name for _, name, _, _ in steps]
    if (
        not steps
        or len(set(columns)) != len(columns)
        or len(set(names)) != len(names)
        or not {name for name, _ in required} <= set(names)
    ):
        return None
    escape: Callable[[str], str] = json.encoder.encode_basestring  # type: ignore[attr-defined]
    template = "{" + ",".join(escape(name).replace("%", "%%") + ":%s" for name in names) + "}"
    seen = [0]  # rows encoded: a memo's hit rate is judged against it (see _Fragments)
    fns: list[Callable[[str], str]] = []
    for slot, (_, name, text, _) in enumerate(steps):
        memo = _Fragments(name, text, encode, fns, slot, lambda: seen[0]) if text is not None else None
        fns.append(escape if memo is None else memo.__getitem__)
    positions = [columns.index(key) for key, _, _, _ in steps]
    pick: Callable[[list[str]], Any] | None = None
    if positions != list(range(len(columns))):
        pick = itemgetter(*positions) if len(positions) > 1 else (lambda cells: (cells[positions[0]],))
    strip = str.strip

    def slow(cells: list[str]) -> bytes:
        row = coerce_cells(cells)
        try:
            return encode(row).encode()
        except (UnicodeEncodeError, TypeError, ValueError) as exc:
            raise RowError(f"row cannot be encoded as JSON: {exc}") from None

    def encode_cells(cells: list[str]) -> bytes:
        seen[0] += 1
        stripped = tuple(map(strip, cells if pick is None else pick(cells)))
        if "" in stripped:
            return slow(cells)
        try:
            return (template % tuple(map(call, fns, stripped))).encode()
        except _Fallback:
            return slow(cells)
        except UnicodeEncodeError as exc:
            raise RowError(f"row cannot be encoded as JSON: {exc}") from None

    return encode_cells
