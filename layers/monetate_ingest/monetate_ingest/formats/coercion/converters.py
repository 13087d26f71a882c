"""Per-type value converters into Monetate's wire types.

Each data type has two converters: ``text`` gets a stripped, non-empty string (a CSV cell or a
JSON string) and ``value`` gets any other JSON value except null. Both return the Monetate-typed
value, raise :class:`Invalid` with a phrase that completes "field 'x' …", or raise
:class:`Absent` when nothing is left (a MULTI_STRING of only commas).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

TextConverter = Callable[[str], Any]
ValueConverter = Callable[[Any], Any]


class Invalid(ValueError):
    """The value does not fit the type; the message completes "field 'name' …"."""


class Absent(Exception):
    """Nothing is left of the value: treat the field as absent."""


class Converter(NamedTuple):
    text: TextConverter | None  # None: keep the stripped text as is (STRING, the fast path)
    value: ValueConverter


#: The largest whole number a NUMBER may hold: 2**53 - 1. JSON readers hold numbers as IEEE-754
#: doubles, which hold every integer up to this one exactly and lose digits beyond it (RFC 8259 §6
#: calls this range the interoperable one). Decimal fractions are rounded to the nearest double, as
#: every JSON number is; what no double holds (beyond ±1.8e308) is refused.
MAX_SAFE_INTEGER = 2**53 - 1
_SAFE_DIGITS = len(str(MAX_SAFE_INTEGER))
_DOUBLE_RANGE = "±1.8e308, the largest a double holds"


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a JSON object"
    if isinstance(value, list | tuple):
        return "a JSON array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def _scalar_text(value: Any) -> str | None:
    """Text of a JSON scalar (booleans as true/false); None for objects and arrays.

    Raises :class:`Invalid` for a float that is not finite (a JSON ``1e400`` reads as infinity),
    so no field is ever stored as ``"inf"``.
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value.__class__ is float and not math.isfinite(value):
        raise _non_finite(value)
    if isinstance(value, int | float | str):
        return str(value).strip()
    return None


# --- STRING -----------------------------------------------------------------------------------


def _string_value(value: Any) -> str:
    text = _scalar_text(value)
    if text is None:
        raise Invalid(f"is {_kind(value)}, expected text")
    if not text:
        raise Absent
    return text


STRING = Converter(None, _string_value)

# --- NUMBER -----------------------------------------------------------------------------------


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else f"{text[:20]!r}…({len(text)} characters)"


def _non_finite(value: float) -> Invalid:
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
            raise _non_finite(value)
        return value  # type: ignore[no-any-return]
    raise Invalid(f"is {_kind(value)}, expected a number")


NUMBER = Converter(_number_text, _number_value)

# --- BOOLEAN ----------------------------------------------------------------------------------

_BOOLEANS = {
    **dict.fromkeys(("true", "t", "yes", "y", "1"), True),
    **dict.fromkeys(("false", "f", "no", "n", "0"), False),
}


def _boolean_text(text: str) -> bool:
    result = _BOOLEANS.get(text.lower())
    if result is None:
        raise Invalid(f"is not a boolean: {text!r} (use true/false, yes/no or 1/0)")
    return result


def _boolean_value(value: Any) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    raise Invalid(f"is {_kind(value)} {value!r}, expected a boolean")


BOOLEAN = Converter(_boolean_text, _boolean_value)

# --- DATETIME ---------------------------------------------------------------------------------

_BARE_NUMBER = re.compile(r"[+-]?\d+(?:\.\d*)?", re.ASCII)
_SLASH_DATE = re.compile(r"(\d{4})/(\d{2})/(\d{2})", re.ASCII)
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+", re.ASCII)
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{6})?Z", re.ASCII)
DATETIME_CACHE_SIZE = 4096
_DATETIME_HINT = "write ISO-8601 such as 2024-05-01T13:45:00Z"


def _datetime_converter(naive_tz: str) -> Converter:
    parse = datetime.fromisoformat
    zone: tzinfo = UTC if naive_tz.upper() in ("UTC", "Z", "ETC/UTC") else ZoneInfo(naive_tz)

    cache: dict[str, str] = {}

    def text(raw: str) -> str:
        """Cached: date columns repeat values far more often than not."""
        try:
            return cache[raw]
        except KeyError:
            pass
        result = convert(raw)
        if len(cache) >= DATETIME_CACHE_SIZE:
            cache.clear()
        cache[raw] = result
        return result

    def convert(raw: str) -> str:
        if raw[-1:] == "Z" and _CANONICAL.fullmatch(raw) and raw[19:26] != ".000000":
            try:
                parse(raw)  # already in the form we emit: only validate it
            except ValueError:
                raise Invalid(f"is not a valid date and time: {raw!r}") from None
            return raw
        if _BARE_NUMBER.fullmatch(raw):
            raise Invalid(
                f"is a bare number {raw!r}, not a date; {_DATETIME_HINT} (epoch seconds are ambiguous)"
            )
        value = raw.upper()
        if "/" in value:
            value = _SLASH_DATE.sub(r"\1-\2-\3", value, count=1)
        if "." in value or "," in value:
            value = _LONG_FRACTION.sub(r"\1", value.replace(",", "."), count=1)
        try:
            moment = parse(value)
        except ValueError:
            raise Invalid(f"is not a date and time: {raw!r}; {_DATETIME_HINT}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        try:
            utc = moment.astimezone(UTC)
        except OverflowError:
            raise Invalid(f"is out of range: {raw!r}") from None
        return utc.replace(tzinfo=None).isoformat() + "Z"

    def value(raw: Any) -> str:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raise Invalid(
                f"is a bare number {raw!r}, not a date; {_DATETIME_HINT} (epoch seconds are ambiguous)"
            )
        raise Invalid(f"is {_kind(raw)}, expected a date string; {_DATETIME_HINT}")

    return Converter(text, value)


# --- MULTI_STRING -----------------------------------------------------------------------------


def _split_escaped(text: str) -> list[str]:
    """Split on commas not escaped by a backslash; escapes are kept as written."""
    items: list[str] = []
    current: list[str] = []
    i, size = 0, len(text)
    while i < size:
        char = text[i]
        if char == "\\" and i + 1 < size:
            current.append(text[i : i + 2])
            i += 2
            continue
        if char == ",":
            items.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    items.append("".join(current))
    return items


def _trim_escaped(item: str) -> str:
    """Strip an item, keeping a whitespace character that a backslash escapes."""
    lead = item.lstrip()
    trimmed = lead.rstrip()
    if trimmed.endswith("\\") and (len(trimmed) - len(trimmed.rstrip("\\"))) % 2:
        return lead[: len(trimmed) + 1]
    return trimmed


def _multi_text(text: str) -> str:
    if "," not in text:
        return text
    if "\\" in text:
        items = [_trim_escaped(item) for item in _split_escaped(text)]
    else:
        items = [item.strip() for item in text.split(",")]
    kept = [item for item in items if item]
    if not kept:
        raise Absent
    return ",".join(kept)


def escape_item(item: str) -> str:
    """Monetate's MULTI_STRING escaping: a backslash as ``\\\\``, a literal comma as ``\\,``."""
    return item.replace("\\", "\\\\").replace(",", "\\,")


def _multi_value(value: Any) -> str:
    if isinstance(value, list):
        kept: list[str] = []
        for position, item in enumerate(value, 1):
            if item is None:
                continue
            text = _scalar_text(item)
            if text is None:
                raise Invalid(f"has {_kind(item)} as item {position}; expected text items")
            if text:
                kept.append(escape_item(text))
        if not kept:
            raise Absent
        return ",".join(kept)
    text = _scalar_text(value)
    if text is None:
        raise Invalid(f"is {_kind(value)}, expected text or an array of text")
    if not text:
        raise Absent
    return _multi_text(text)


MULTI_STRING = Converter(_multi_text, _multi_value)


def converter_for(data_type: str, naive_tz: str = "UTC") -> Converter:
    """The converter of a Monetate data type (unknown types are passed on as STRING)."""
    if data_type == "NUMBER":
        return NUMBER
    if data_type == "BOOLEAN":
        return BOOLEAN
    if data_type == "DATETIME":
        return _datetime_converter(naive_tz)
    if data_type == "MULTI_STRING":
        return MULTI_STRING
    return STRING
