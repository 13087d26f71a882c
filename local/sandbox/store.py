"""Schemas, rows, upload history: the sandbox's state behind one lock."""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .rules import RowRules, RuleError, apply_patch, validate_schema

UPLOAD_HISTORY = 50


class NotFound(LookupError):
    """The schema or record does not exist."""


def iso(ts: float) -> str:
    """A Unix time as the API's ISO-8601 UTC form."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Dataset:
    schema: dict[str, Any]
    rules: RowRules
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: When each row was last written (a counter): newest first for the single-record GET.
    written: list[int] = field(default_factory=list)
    by_unique_key: dict[Any, int] = field(default_factory=dict)
    uploads: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=UPLOAD_HISTORY))


class Store:
    """All datasets of the sandbox's retailer; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sets: dict[str, _Dataset] = {}
        self._next_id = 1
        self._writes = 0

    # ---- schemas ---------------------------------------------------------------------------

    def create_schema(self, body: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Validate and store a new schema; returns (schema, warnings). RuleError on 400."""
        schema, warnings = validate_schema(body)
        with self._lock:
            if schema["name"] in self._sets:
                raise RuleError([{"field": "name", "message": "a schema with this name already exists"}])
            schema = {"id": self._next_id, **schema, "created_date": iso(self._clock())}
            self._next_id += 1
            self._sets[schema["name"]] = _Dataset(schema, RowRules(schema))
        return copy.deepcopy(schema), warnings

    def patch_schema(self, name: str, body: Any) -> dict[str, Any]:
        """Add fields or set named_identifier. NotFound, RuleError."""
        with self._lock:
            dataset = self._dataset(name)
            patched = apply_patch(dataset.schema, body)
            dataset.schema, dataset.rules = patched, RowRules(patched)
            return copy.deepcopy(patched)

    def schema(self, name: str, *, row_count: bool = False, latest_upload: bool = False) -> dict[str, Any]:
        """One schema, optionally with ``row_count`` and ``last_file_upload``. NotFound."""
        with self._lock:
            return self._describe(self._dataset(name), row_count, latest_upload)

    def schemas(self, *, row_count: bool = False, latest_upload: bool = False) -> list[dict[str, Any]]:
        """Every schema, oldest first."""
        with self._lock:
            return [self._describe(d, row_count, latest_upload) for d in self._sets.values()]

    def _describe(self, dataset: _Dataset, row_count: bool, latest_upload: bool) -> dict[str, Any]:
        out = copy.deepcopy(dataset.schema)
        if row_count:
            out["row_count"] = len(dataset.rows)
        if latest_upload:
            out["last_file_upload"] = dict(dataset.uploads[0]) if dataset.uploads else None
        return out

    def _dataset(self, name: str) -> _Dataset:
        dataset = self._sets.get(name)
        if dataset is None:
            raise NotFound(f"no schema named {name!r}")
        return dataset

    def rules(self, name: str) -> RowRules:
        """The compiled row rules of a schema. NotFound."""
        with self._lock:
            return self._dataset(name).rules

    # ---- rows ------------------------------------------------------------------------------

    def upsert(self, name: str, rows: list[Any], started: float) -> int:
        """Store rows (replace by unique key, else append) and log an upload. NotFound."""
        with self._lock:
            dataset = self._dataset(name)
            unique_key = dataset.rules.unique_key
            stored, written, by_uk = dataset.rows, dataset.written, dataset.by_unique_key
            for row in rows:
                if row.__class__ is not dict:
                    continue
                self._writes += 1
                key = row.get(unique_key) if unique_key else None
                position = by_uk.get(key) if key is not None and isinstance(key, _HASHABLE) else None
                if position is None:
                    if key is not None and isinstance(key, _HASHABLE):
                        by_uk[key] = len(stored)
                    stored.append(row)
                    written.append(self._writes)
                else:
                    stored[position], written[position] = row, self._writes
            now = iso(self._clock())
            dataset.uploads.appendleft(
                {
                    "status": "COMPLETE",
                    "upload_time": iso(started),
                    "import_start_time": iso(started),
                    "import_end_time": now,
                    "validation_errors": [],
                    "validation_warnings": [],
                }
            )
        return len(rows)

    def records(self, name: str, record_id: str) -> list[dict[str, Any]]:
        """The rows whose unique key, else identifier, equals ``record_id``, newest first, each
        with every field of the schema (None where the row had none). NotFound for the schema."""
        with self._lock:
            dataset = self._dataset(name)
            rows, written, rules = dataset.rows, dataset.written, dataset.rules
            position = dataset.by_unique_key.get(record_id)
            if position is not None:
                found = [position]
            else:
                found = [i for i, row in enumerate(rows) if row.get(rules.identifier) == record_id]
                found.sort(key=written.__getitem__, reverse=True)
            fields = list(dataset.schema["fields"])
            return [{**{f: None for f in fields}, **copy.deepcopy(rows[i])} for i in found]

    def uploads(self, name: str) -> list[dict[str, Any]]:
        """Upload history, newest first. NotFound."""
        with self._lock:
            return [dict(u) for u in self._dataset(name).uploads]

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Copies of the stored rows in order. NotFound."""
        with self._lock:
            return copy.deepcopy(self._dataset(name).rows)

    def clear_rows(self) -> None:
        """Drop every row and upload; keep the schemas."""
        with self._lock:
            for name, dataset in self._sets.items():
                self._sets[name] = _Dataset(dataset.schema, dataset.rules)


_HASHABLE = (str, int, float, bool)
