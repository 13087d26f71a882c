"""NUMBER: finite within ±1.8e308, and whole numbers within ±(2**53 - 1).

Whole numbers beyond 2**53 - 1 are refused, not rounded: JSON readers hold numbers as IEEE-754
doubles, which lose digits beyond it (12345678901234567891 would arrive as …7168), and such long
whole numbers are ids, better kept as STRING. Decimal fractions are rounded to the nearest double
as any JSON number is, whatever their length.
"""

from __future__ import annotations

import math
from typing import Any

from monetate_ingest.formats.coercion.base import Converter, Invalid, kind

#: The largest whole number a NUMBER may hold: 2**53 - 1. JSON readers hold numbers as IEEE-754
#: doubles, which hold every integer up to this one exactly and lose digits beyond it (RFC 8259 §6
#: calls this range the interoperable one). Decimal fractions are rounded to the nearest double, as
#: every JSON number is; what no double holds (beyond ±1.8e308) is refused.
MAX_SAFE_INTEGER = 2**53 - 1
_SAFE_DIGITS = len(str(MAX_SAFE_INTEGER))
_DOUBLE_RANGE = "±1.8e308, the largest a double holds"


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}…({len(text)} characters)"


def non_finite(value: float) -> Invalid:
    """A JSON number no double holds (``1e400`` reads as infinity)."""
    return Invalid(f"is out of range: it reads as {value!r}; a number must be finite, within {_DOUBLE_RANGE}")


def _whole_out_of_range(text: str) -> Invalid:
    return Invalid(
        f"is out of range: {_shown(text)} is a whole number beyond ±{MAX_SAFE_INTEGER:,}, the largest a "
        "double holds exactly (use a STRING field for ids and codes)"
    )


def _number_text(text: str) -> int | float:
    if text.isascii() and "_" not in text:  # int()/float() also take '1_000' and non-ASCII digits
        whole = "." not in text and "e" not in text and "E" not in text
        if whole and len(text) > _SAFE_DIGITS - 1:  # maybe beyond 2**53; never int() 5,000 digits
            digits = text[1:] if text[:1] in "+-" else text
            if digits.isdigit():
                if len(digits.lstrip("0")) > _SAFE_DIGITS or abs(int(digits)) > MAX_SAFE_INTEGER:
                    raise _whole_out_of_range(text)
                return int(text)
        try:
            if whole:
                return int(text)
            number = float(text)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
            raise Invalid(f"is out of range: {_shown(text)} is a number beyond {_DOUBLE_RANGE}")
    hint = ""
    if "," in text:
        hint = " (remove thousands separators and write decimals with '.')"
    elif text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        hint = " (only finite numbers are allowed)"
    raise Invalid(f"is not a number: {_shown(text)}{hint}")


def _number_value(value: Any) -> int | float:
    cls = value.__class__
    if cls is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value  # type: ignore[no-any-return]
        raise _whole_out_of_range(str(value))
    if cls is float:
        if not math.isfinite(value):
            raise non_finite(value)
        return value  # type: ignore[no-any-return]
    raise Invalid(f"is {kind(value)}, expected a number")


NUMBER = Converter(_number_text, _number_value)
