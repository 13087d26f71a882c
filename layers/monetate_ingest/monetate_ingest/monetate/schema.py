"""Monetate schema definitions and a per-container cache of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from monetate_ingest.monetate.exceptions import NotFoundError, UnknownSchemaError
from monetate_ingest.monetate.names import check_schema_name

DATA_TYPES = frozenset({"STRING", "MULTI_STRING", "NUMBER", "DATETIME", "BOOLEAN", "GOOGLE_PRODUCT_CATEGORY"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a schema, as the Data API describes it."""

    name: str
    data_type: str
    identifier: bool = False
    unique_key: bool = False
    event_time: bool = False
    required: bool = False

    @classmethod
    def from_api(cls, name: str, data: Mapping[str, Any]) -> FieldSpec:
        return cls(
            name=name,
            data_type=str(data.get("data_type") or "STRING").upper(),
            identifier=bool(data.get("identifier")),
            unique_key=bool(data.get("unique_key")),
            event_time=bool(data.get("event_time")),
            required=bool(data.get("required")),
        )


@dataclass(frozen=True, slots=True)
class SchemaSpec:
    """A Data API schema: its name, type (event/attribute/product) and fields by name."""

    name: str
    type: str
    fields: dict[str, FieldSpec]

    @property
    def identifier(self) -> str | None:
        """Name of the identifier field, if any."""
        return next((f.name for f in self.fields.values() if f.identifier), None)

    @property
    def unique_key(self) -> str | None:
        return next((f.name for f in self.fields.values() if f.unique_key), None)

    @property
    def event_time(self) -> str | None:
        return next((f.name for f in self.fields.values() if f.event_time), None)

    @property
    def required_fields(self) -> list[str]:
        """Fields every row must carry: identifier, unique key and those marked required."""
        return [f.name for f in self.fields.values() if f.identifier or f.unique_key or f.required]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> SchemaSpec:
        """Parse the Data API schema object (the response envelope's ``data`` is unwrapped)."""
        if "fields" not in data and isinstance(data.get("data"), Mapping):
            data = data["data"]
        raw_fields = data.get("fields") or {}
        if not isinstance(raw_fields, Mapping):
            raise ValueError("schema 'fields' must be an object of field definitions")
        fields = {
            str(name): FieldSpec.from_api(str(name), spec if isinstance(spec, Mapping) else {})
            for name, spec in raw_fields.items()
        }
        return cls(name=str(data.get("name") or ""), type=str(data.get("type") or ""), fields=fields)


class SchemaCache:
    """Caches :class:`SchemaSpec` per name for ``max_age`` seconds; thread-safe.

    ``fetch(name)`` returns the API's schema dict (``MonetateClient.get_schema``; a client object
    is accepted too). A missing schema raises :class:`UnknownSchemaError` and is not cached; a name
    that breaks the naming rule is refused before any fetch (:func:`check_schema_name`).
    """

    def __init__(
        self,
        fetch: Callable[[str], Mapping[str, Any]] | Any,
        max_age: float = 300,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch: Callable[[str], Mapping[str, Any]] = (
            fetch.get_schema if hasattr(fetch, "get_schema") else fetch
        )
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, SchemaSpec]] = {}
        self.fetches = 0

    def get(self, name: str) -> SchemaSpec:
        """The cached schema, fetched when absent or older than ``max_age``.

        An invalid name raises :class:`~monetate_ingest.monetate.exceptions.InvalidSchemaNameError`
        (an :class:`UnknownSchemaError`) without a fetch.
        """
        check_schema_name(name)
        with self._lock:
            entry = self._entries.get(name)
            if entry is not None and self._clock() - entry[0] < self._max_age:
                return entry[1]
            return self._load(name)

    def refresh(self, name: str) -> SchemaSpec:
        """Re-read the schema now (after adding fields, say)."""
        check_schema_name(name)
        with self._lock:
            return self._load(name)

    def invalidate(self, name: str | None = None) -> None:
        """Forget one schema, or all of them."""
        with self._lock:
            if name is None:
                self._entries.clear()
            else:
                self._entries.pop(name, None)

    def _load(self, name: str) -> SchemaSpec:
        self.fetches += 1
        try:
            data = self._fetch(name)
        except NotFoundError:
            self._entries.pop(name, None)
            raise UnknownSchemaError(
                f"schema {name!r} does not exist in Monetate for this retailer and environment; "
                "create it first, or check the dataset name in the S3 path or message",
                status=404,
            ) from None
        spec = SchemaSpec.from_api(data)
        if not spec.name:
            spec = SchemaSpec(name=name, type=spec.type, fields=spec.fields)
        self._entries[name] = (self._clock(), spec)
        return spec
