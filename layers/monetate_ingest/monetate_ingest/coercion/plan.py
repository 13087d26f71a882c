"""Compile a fixed column plan (CSV) into a fast ``coerce(raw)`` function.

The common case runs in C: fetch every column with one ``itemgetter``, strip them all with
``map``, zip them onto field names; only typed (non-STRING) fields then take a Python call each.
Anything unusual (a missing key, a non-string value) falls back to the generic step loop.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

from ..errors import RowError
from .converters import Absent, Invalid

Step = tuple[str, str, Any, Any]  # (source key, field name, text converter | None, value converter)
CoerceFn = Callable[[dict[str, Any]], dict[str, Any]]


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
    names = [name for _, name, _, _ in steps]
    typed = [(name, text) for _, name, text, _ in steps if text is not None]
    needed = frozenset(name for name, _ in required)
    strip = str.strip
    identity = keys == names
    width = len(keys)

    def slow(raw: dict[str, Any]) -> dict[str, Any]:
        return run_steps(steps, required, raw)

    if not keys:
        return slow
    fetch: Callable[[dict[str, Any]], tuple[Any, ...]]
    fetch = itemgetter(*keys) if len(keys) > 1 else (lambda raw: (raw[keys[0]],))

    def coerce(raw: dict[str, Any]) -> dict[str, Any]:
        try:
            got = fetch(raw)
            cells = tuple(map(strip, got))
        except (KeyError, TypeError):  # a missing column or a non-string value
            return slow(raw)
        if "" in cells:
            out = {name: cell for name, cell in zip(names, cells) if cell}  # noqa: B905
        elif identity and cells == got and len(raw) == width:  # nothing to rename or strip
            out = raw.copy()
        else:
            out = dict(zip(names, cells))  # noqa: B905 - same length; strict= is a slow keyword call
        for name, text in typed:
            cell = out.get(name)
            if cell is not None:
                try:
                    out[name] = text(cell)
                except Invalid as exc:
                    raise RowError(f"field {name!r} {exc}", field=name) from None
                except Absent:
                    del out[name]
        if needed and not out.keys() >= needed:
            check_required(required, out)
        return out

    return coerce
