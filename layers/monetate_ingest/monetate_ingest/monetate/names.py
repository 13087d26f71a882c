"""Monetate schema (dataset) names, checked before any of them reaches a URL.

The rule (DESIGN.md "Schema names"): a letter first, then letters, digits, ``_`` or ``-``, at most
64 characters, ASCII only (the reference's pattern is ``^[A-Za-z][A-Za-z0-9_]*$``; its text also
allows hyphens, and we follow the text so that no existing dataset is refused). So ``.``, ``..``,
``/``, ``%``, ``?``, ``#`` and spaces never reach a path, where they could turn a schema's URL into
another endpoint's.
"""

from __future__ import annotations

import re

from monetate_ingest.monetate.exceptions import InvalidSchemaNameError

MAX_SCHEMA_NAME = 64
RULE = f"a letter first, then letters, digits, '_' or '-' (ASCII), at most {MAX_SCHEMA_NAME} characters"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALLOWED = _LETTERS | frozenset("0123456789_-")
_SHOWN = 80  # characters of a refused value shown in the message


def check_schema_name(name: str) -> str:
    """``name`` if it is a valid schema name; else :class:`InvalidSchemaNameError` naming the
    value, what is wrong with it, and the rule."""
    if isinstance(name, str) and len(name) <= MAX_SCHEMA_NAME and _NAME.fullmatch(name):
        return name
    raise InvalidSchemaNameError(f"schema name {_show(name)} is not valid: {_problem(name)}; expected {RULE}")


def _problem(name: object) -> str:
    if not isinstance(name, str):
        return f"it is {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return "a dot segment is never a name"
    if len(name) > MAX_SCHEMA_NAME:
        return f"it is {len(name)} characters long"
    if name[0] not in _LETTERS:
        return f"it starts with {name[0]!r}, not an ASCII letter"
    position, char = next((i, c) for i, c in enumerate(name) if c not in _ALLOWED)
    return f"{char!r} at position {position + 1} is not allowed"


def _show(name: object) -> str:
    text = repr(name)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."
