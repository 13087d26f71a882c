"""Schema and row validation, following the Monetate Data API reference."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

#: The reference's text allows hyphens, its pattern does not: we follow the text.
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
#: DATETIME: "a timestamp conforming to the ISO-8601 standard", typed ``format: date-time``
#: (RFC 3339, the ISO-8601 profile with a time and an offset): what both allow.
RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?(?:[Zz]|[+-]\d\d:\d\d)", re.ASCII)
NAMED_IDENTIFIER_RE = re.compile(r"^\w+$")
MAX_NAME = 64
MAX_FIELDS = 40
DATA_TYPES = ("STRING", "MULTI_STRING", "BOOLEAN", "DATETIME", "NUMBER", "GOOGLE_PRODUCT_CATEGORY")
SCHEMA_TYPES = (
    "agil_one",
    "attribute",
    "behavioral_trigger",
    "custom_list",
    "customer_data_privacy",
    "email_metadata",
    "event",
    "inventory",
    "product",
    "product_recommendation",
    "purchase",
)
FLAG_ATTRS = ("identifier", "unique_key", "event_time", "required")
PRIVACY_DEFAULTS: dict[str, dict[str, Any]] = {
    "customer_id": {"data_type": "STRING", "identifier": True},
    "delete_request_time": {"data_type": "DATETIME"},
}
READ_ONLY_KEYS = ("id", "created_date")
SCHEMA_KEYS = ("name", "type", "fields", "named_identifier")

Error = dict[str, Any]


class RuleError(Exception):
    """A request broke one or more rules; ``errors`` go into ``meta.errors``."""

    def __init__(self, errors: list[Error]) -> None:
        super().__init__("; ".join(str(e.get("message")) for e in errors))
        self.errors = errors


def _err(message: str, field: str | None = None) -> Error:
    return {"message": message} if field is None else {"field": field, "message": message}


def _check_fields(fields: Mapping[str, Any], schema_type: str) -> list[Error]:
    """Check field definitions and the identifier/unique_key/event_time rules."""
    errors: list[Error] = []
    if not 1 <= len(fields) <= MAX_FIELDS:
        errors.append(_err(f"a schema has 1 to {MAX_FIELDS} fields, got {len(fields)}", "fields"))
    flagged: dict[str, list[str]] = {"identifier": [], "unique_key": [], "event_time": []}
    for name, spec in fields.items():
        if not name or len(name) > MAX_NAME:
            errors.append(_err(f"field names are 1 to {MAX_NAME} characters", "fields"))
            continue
        if not isinstance(spec, dict):
            errors.append(_err("a field definition must be an object", name))
            continue
        unknown = sorted(set(spec) - {"data_type", *FLAG_ATTRS})
        if unknown:
            errors.append(_err(f"unknown field attributes: {', '.join(unknown)}", name))
        data_type = spec.get("data_type")
        if data_type not in DATA_TYPES:
            errors.append(_err(f"data_type must be one of {', '.join(DATA_TYPES)}", name))
        for flag in FLAG_ATTRS:
            if flag in spec and not isinstance(spec[flag], bool):
                errors.append(_err(f"{flag} must be a boolean", name))
            elif spec.get(flag) is True and flag in flagged:
                flagged[flag].append(name)
        for flag, wanted in (("identifier", "STRING"), ("unique_key", "STRING"), ("event_time", "DATETIME")):
            if spec.get(flag) is True and data_type != wanted:
                errors.append(_err(f"the {flag} field must be {wanted}", name))
    if len(flagged["identifier"]) != 1:
        errors.append(_err("exactly one field must be the identifier", "fields"))
    if len(flagged["unique_key"]) > 1:
        errors.append(_err("at most one field may be the unique_key", "fields"))
    if schema_type == "event" and len(flagged["event_time"]) != 1:
        errors.append(_err("an event schema needs exactly one event_time field", "fields"))
    return errors


def validate_schema(body: Any) -> tuple[dict[str, Any], list[Error]]:
    """Validate a POST /schema/ body; return the normalized schema and warnings."""
    if not isinstance(body, dict):
        raise RuleError([_err("the request body must be a JSON object")])
    errors = [
        _err(f"{k!r} is read-only: Monetate sets it", k)
        if k in READ_ONLY_KEYS
        else _err(f"{k!r} is not a key of a schema ({', '.join(SCHEMA_KEYS)})", k)
        for k in body
        if k not in SCHEMA_KEYS
    ]
    name = body.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > MAX_NAME:
        errors.append(_err(f"name must match {NAME_RE.pattern} and be at most {MAX_NAME} characters", "name"))
    schema_type = body.get("type", "attribute")
    if schema_type not in SCHEMA_TYPES:
        errors.append(_err(f"type must be one of {', '.join(SCHEMA_TYPES)}", "type"))
    fields = body.get("fields")
    if not isinstance(fields, dict):
        errors.append(_err("fields is required and must be an object", "fields"))
        raise RuleError(errors)
    fields = {k: dict(v) if isinstance(v, dict) else v for k, v in fields.items()}
    if schema_type == "customer_data_privacy":
        for key, spec in PRIVACY_DEFAULTS.items():
            fields.setdefault(key, dict(spec))
    errors.extend(_check_fields(fields, str(schema_type)))
    schema: dict[str, Any] = {"name": name, "type": schema_type, "fields": fields}
    if "named_identifier" in body:
        errors.extend(_check_named_identifier(body["named_identifier"]))
        schema["named_identifier"] = body["named_identifier"]
    if errors:
        raise RuleError(errors)
    return schema, []


def _check_named_identifier(value: Any) -> list[Error]:
    if isinstance(value, str) and NAMED_IDENTIFIER_RE.match(value):
        return []
    return [_err(r"named_identifier must match ^\w+$", "named_identifier")]


def apply_patch(schema: Mapping[str, Any], body: Any) -> dict[str, Any]:
    """Validate a PATCH body against ``schema``; return the patched copy."""
    if not isinstance(body, dict):
        raise RuleError([_err("the request body must be a JSON object")])
    has_fields, has_named = "fields" in body, "named_identifier" in body
    if has_fields == has_named:
        raise RuleError([_err("supply either fields or named_identifier, not both and not neither")])
    patched = {**schema, "fields": dict(schema["fields"])}
    if has_named:
        errors = _check_named_identifier(body["named_identifier"])
        if errors:
            raise RuleError(errors)
        patched["named_identifier"] = body["named_identifier"]
        return patched
    new = body["fields"]
    if not isinstance(new, dict) or not new:
        raise RuleError([_err("fields must be a non-empty object", "fields")])
    errors = [_err("the field already exists", k) for k in new if k in patched["fields"]]
    if errors:
        raise RuleError(errors)
    patched["fields"].update({k: dict(v) if isinstance(v, dict) else v for k, v in new.items()})
    errors = _check_fields(patched["fields"], str(patched["type"]))
    if errors:
        raise RuleError(errors)
    return patched


# ---- rows -------------------------------------------------------------------------------------

Check = Callable[[Any], str | None]


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value:
        return "must not be empty"
    if value != value.strip():
        return "must not have leading or trailing whitespace"
    return None


def _number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected a boolean, got {type(value).__name__}"


def _datetime(value: Any) -> str | None:
    problem = _text(value)
    if problem:
        return problem
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        if not RFC3339.fullmatch(value):
            raise ValueError(value)
        datetime.fromisoformat(text.replace("t", "T"))
    except ValueError:
        return "expected an ISO-8601 timestamp with a time and an offset, such as 2024-05-01T10:00:00Z"
    return None


def _category(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return None
    return _text(value)


CHECKS: dict[str, Check] = {
    "STRING": _text,
    "MULTI_STRING": _text,
    "NUMBER": _number,
    "BOOLEAN": _boolean,
    "DATETIME": _datetime,
    "GOOGLE_PRODUCT_CATEGORY": _category,
}
MAX_ROW_ERRORS = 100


class RowRules:
    """Precompiled row checks for one schema."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        fields: Mapping[str, Mapping[str, Any]] = schema["fields"]
        self.checks = {name: CHECKS[spec["data_type"]] for name, spec in fields.items()}
        self.identifier = next(n for n, s in fields.items() if s.get("identifier"))
        self.unique_key = next((n for n, s in fields.items() if s.get("unique_key")), None)
        self.required = [n for n in (self.identifier, self.unique_key) if n is not None]

    def errors(self, rows: list[Any], *, name_rows: bool) -> list[Error]:
        """Every rule a row breaks (capped); empty when all rows are acceptable."""
        errors: list[Error] = []
        for index, row in enumerate(rows):
            for field, message in self._row_problems(row):
                error: Error = {"field": field, "message": message} if field else {"message": message}
                if name_rows:
                    error["row"] = index
                errors.append(error)
            if len(errors) >= MAX_ROW_ERRORS:
                break
        return errors[:MAX_ROW_ERRORS]

    def _row_problems(self, row: Any) -> list[tuple[str | None, str]]:
        if not isinstance(row, dict):
            return [(None, "each row must be a JSON object")]
        problems: list[tuple[str | None, str]] = []
        checks = self.checks
        for name, value in row.items():
            check = checks.get(name)
            if check is None:
                problems.append((name, f"unknown field {name!r}"))
            elif value is not None:
                problem = check(value)
                if problem:
                    problems.append((name, f"field {name!r}: {problem}"))
        for name in self.required:
            if row.get(name) is None:
                problems.append((name, f"field {name!r} is required"))
        return problems
