"""What every converter shares: the converter pair and how a value is refused or absent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

TextConverter = Callable[[str], Any]
ValueConverter = Callable[[Any], Any]


class Invalid(ValueError):
    """The value does not fit the type; the message completes "field 'name' …"."""


class Absent(Exception):
    """Nothing is left of the value: treat the field as absent."""


class Converter(NamedTuple):
    text: TextConverter | None  # None: keep the stripped text as is (STRING, the fast path)
    value: ValueConverter


def kind(value: Any) -> str:
    """'a JSON object', 'a number' … for messages."""
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list | tuple):
        return "a JSON array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
