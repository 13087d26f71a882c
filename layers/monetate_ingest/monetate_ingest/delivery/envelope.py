"""The SQS envelope PostRecords consumes: ``{"schema": "<name>", "rows": [{...}, ...], "source": {...}}``.

``parse_envelope`` validates a message body and says exactly what is wrong with one that is not an
envelope (the :class:`EnvelopeError` code becomes the DLQ message's ``error_type``);
``build_envelope`` writes one and refuses to write what ``parse_envelope`` would refuse, so every
producer in this project (IngestFile's parking path, the DLQ of refused rows, the demo) emits
valid bodies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from monetate_ingest.delivery.exceptions import EnvelopeError
from monetate_ingest.monetate.exceptions import InvalidSchemaNameError
from monetate_ingest.monetate.names import check_schema_name

#: The keys an envelope may have; anything else is a producer bug worth hearing about.
ENVELOPE_KEYS = frozenset({"schema", "rows", "source"})
#: Row values are scalars or arrays of them; anything nested deeper than this is refused before it
#: reaches code that recurses (hashing, encoding), with a reason instead of a ``RecursionError``.
MAX_NESTING = 32

# Error codes (the DLQ's ``error_type``).
INVALID_JSON = "invalid_json"
NOT_AN_ENVELOPE = "not_an_envelope"
MISSING_SCHEMA = "missing_schema"
INVALID_SCHEMA = "invalid_schema"
INVALID_ROWS = "invalid_rows"
EMPTY_ROWS = "empty_rows"
INVALID_SOURCE = "invalid_source"


@dataclass(frozen=True)
class Envelope:
    """A validated message: the dataset name, its rows (objects) and where they came from."""

    schema: str
    rows: list[dict[str, Any]]
    source: dict[str, Any] | None = None

    def identity(self) -> dict[str, Any]:
        """What identifies the content (the idempotency key's input): not the SQS message id."""
        return {"schema": self.schema, "rows": self.rows, "source": self.source}


def parse_envelope(body: str) -> Envelope:
    """Parse and validate one SQS message body; raise :class:`EnvelopeError` naming the problem."""
    try:
        data = json.loads(body, parse_constant=_refuse_constant)
    except _NonStandardJson as exc:
        _fail(INVALID_JSON, f"the message body is not valid JSON: {exc}")
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        _fail(INVALID_JSON, f"the message body is not valid JSON ({exc}); {_EXPECTED}")
    except RecursionError:
        _fail(
            INVALID_JSON,
            f"the message body nests arrays or objects too deeply to be read (more than "
            f"{MAX_NESTING} levels are never a row); {_EXPECTED}",
        )
    return _validate(data)


def build_envelope(
    schema: str, rows: Sequence[Mapping[str, Any]], source: Mapping[str, Any] | None = None
) -> str:
    """A compact JSON envelope; raises :class:`EnvelopeError` for what ``parse_envelope`` refuses."""
    data: dict[str, Any] = {
        "schema": schema,
        "rows": [dict(r) if isinstance(r, Mapping) else r for r in rows],
    }
    if source is not None:
        data["source"] = dict(source) if isinstance(source, Mapping) else source
    _validate(data)
    return dumps_compact(data)


def dumps_compact(data: Any) -> str:
    """Compact JSON that SQS accepts: raw UTF-8 when possible, escaped when the text has lone
    surrogates (which SQS, like UTF-8, cannot carry)."""
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:
        _fail(INVALID_ROWS, f"rows must be plain JSON values: {exc}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text


_EXPECTED = 'expected {"schema": "<dataset name>", "rows": [{...}, ...]} with an optional "source" object'


class _NonStandardJson(ValueError):
    pass


def _refuse_constant(name: str) -> NoReturn:
    raise _NonStandardJson(f"{name} is not a JSON number; send null or leave the field out")


def _fail(code: str, message: str) -> NoReturn:
    raise EnvelopeError(code, message)


def _validate(data: Any) -> Envelope:
    if not isinstance(data, dict):
        _fail(
            NOT_AN_ENVELOPE, f"the message body is JSON but a {_json_type(data)}, not an object; {_EXPECTED}"
        )
    extra = sorted(str(k) for k in data if k not in ENVELOPE_KEYS)
    if extra:
        names = ", ".join(repr(k) for k in extra[:5])
        _fail(NOT_AN_ENVELOPE, f"unexpected key(s) {names} in the message body; {_EXPECTED}")

    schema = data.get("schema")
    if schema is None or schema == "":
        _fail(MISSING_SCHEMA, f'the message has no "schema" (the Monetate dataset name); {_EXPECTED}')
    try:
        check_schema_name(schema)
    except InvalidSchemaNameError as exc:
        _fail(INVALID_SCHEMA, f'"schema" is not a dataset name: {exc}')

    if "rows" not in data:
        _fail(INVALID_ROWS, f'the message has no "rows"; {_EXPECTED}')
    rows = data["rows"]
    if not isinstance(rows, list):
        _fail(INVALID_ROWS, f'"rows" must be an array of objects, not a {_json_type(rows)}')
    if not rows:
        _fail(EMPTY_ROWS, '"rows" is empty; send at least one row or no message at all')
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            _fail(INVALID_ROWS, f'"rows"[{i}] is a {_json_type(row)}; every row must be an object')
        for key, value in row.items():
            if isinstance(value, (dict, list)) and _too_deep(value):
                _fail(
                    INVALID_ROWS,
                    f'"rows"[{i}] field {str(key)[:80]!r} nests more than {MAX_NESTING} levels deep; '
                    "row values are text, numbers, booleans or arrays of them",
                )

    source = data.get("source")
    if source is not None and not isinstance(source, dict):
        _fail(INVALID_SOURCE, f'"source" must be an object when present, not a {_json_type(source)}')
    return Envelope(schema=schema, rows=rows, source=source)


def _too_deep(value: Any, limit: int = MAX_NESTING) -> bool:
    """Whether ``value`` holds containers more than ``limit`` levels deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__
