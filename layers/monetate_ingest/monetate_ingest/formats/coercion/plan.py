"""Compile a fixed column plan (CSV) into a fast ``coerce(raw)`` function.

The common case runs in C: fetch every column with one ``itemgetter``, strip them all with
``map``, zip them onto field names; only typed (non-STRING) fields then take a Python call each —
or only a dict lookup: converters are pure, and typed columns repeat their values (flags, tags,
dates, small numbers), so each typed column memoises its short cells' results (bounded: cleared
when full). Anything unusual (a missing key, a non-string value) falls back to the generic step loop.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from monetate_ingest.formats.coercion.converters import Absent, Invalid
from monetate_ingest.formats.exceptions import RowError

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
