"""Per-type value converters into Monetate's wire types.

Each data type has two converters: ``text`` gets a stripped, non-empty string (a CSV cell or a
JSON string) and ``value`` gets any other JSON value except null. Both return the Monetate-typed
value, raise :class:`Invalid` with a phrase that completes "field 'x' …", or raise
:class:`Absent` when nothing is left (a MULTI_STRING of only commas).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from monetate_ingest.formats.coercion.base import Absent, Converter, Invalid
from monetate_ingest.formats.coercion.base import kind as _kind
from monetate_ingest.formats.coercion.numbers import MAX_SAFE_INTEGER, NUMBER, non_finite

__all__ = [
    "BOOLEAN",
    "MAX_SAFE_INTEGER",
    "MULTI_STRING",
    "NUMBER",
    "STRING",
    "Absent",
    "Converter",
    "Invalid",
    "converter_for",
    "escape_item",
]


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
        raise non_finite(value)
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
