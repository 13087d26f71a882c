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
    by_unique_key: dict[Any, int] = field(default_factory=dict)
    by_identifier: dict[Any, int] = field(default_factory=dict)
    uploads: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=UPLOAD_HISTORY))


class Store:
    """All datasets of the sandbox's retailer; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sets: dict[str, _Dataset] = {}
        self._next_id = 1

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
            unique_key, identifier = dataset.rules.unique_key, dataset.rules.identifier
            stored, by_uk, by_id = dataset.rows, dataset.by_unique_key, dataset.by_identifier
            self._upsert_each(rows, stored, by_uk, by_id, unique_key, identifier)
            now = iso(self._clock())
            dataset.uploads.appendleft({
                "status": "COMPLETE", "upload_time": iso(started), "import_start_time": iso(started),
                "import_end_time": now, "validation_errors": [], "validation_warnings": [],
                "row_count": len(rows),
            })
        return len(rows)

    @staticmethod
    def _upsert_each(rows: list[Any], stored: list[dict[str, Any]], by_uk: dict[Any, int],
                     by_id: dict[Any, int], unique_key: str | None, identifier: str | None) -> None:
        """Row by row: replace by unique key, else append; the identifier points at the latest
        (not kept when it is the unique key: :meth:`record` looks that up first)."""
        for row in rows:
            if row.__class__ is not dict:
                continue
            key = row.get(unique_key) if unique_key else None
            if key is not None and isinstance(key, _HASHABLE):
                position = by_uk.get(key)
                if position is None:
                    position = by_uk[key] = len(stored)
                    stored.append(row)
                else:
                    stored[position] = row
            else:
                position = len(stored)
                stored.append(row)
            ident = row.get(identifier) if identifier and identifier != unique_key else None
            if ident is not None and isinstance(ident, _HASHABLE):
                by_id[ident] = position

    def record(self, name: str, record_id: str) -> dict[str, Any]:
        """The row whose unique key, else identifier, equals ``record_id``. NotFound."""
        with self._lock:
            dataset = self._dataset(name)
            rows, identifier = dataset.rows, dataset.rules.identifier
            position = dataset.by_unique_key.get(record_id)
            if position is None:
                position = dataset.by_identifier.get(record_id)
                if position is not None and rows[position].get(identifier) != record_id:
                    # an upsert replaced that row with another identifier: search the rest
                    matches = (i for i in reversed(range(len(rows))) if rows[i].get(identifier) == record_id)
                    position = next(matches, None)
            if position is None:
                raise NotFound(f"no record with id {record_id!r}")
            return copy.deepcopy(rows[position])

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
