"""The unknown-column policy (``UNKNOWN_COLUMNS``): reject the file, ignore the columns, or PATCH
the schema to add them as STRING fields; and the error when Monetate refuses to add them."""

from __future__ import annotations

from typing import Any

from monetate_ingest.formats.coercion import RowCoercer, compile_coercer
from monetate_ingest.formats.exceptions import UnknownColumnsError
from monetate_ingest.monetate.exceptions import BadRequestError
from monetate_ingest.monetate.schema import SchemaCache, SchemaSpec
from monetate_ingest.observability import logger
from monetate_ingest.settings import RowSettings


class FieldsRefusedError(UnknownColumnsError):
    """``UNKNOWN_COLUMNS=add``, but Monetate refused to add the columns as fields (PATCH 400)."""

    def __init__(self, schema: str, columns: list[str], reason: str) -> None:
        super().__init__(schema, columns)
        names = ", ".join(repr(c) for c in columns)
        self.args = (
            f"columns {names} are not fields of schema {schema!r} and Monetate refused to add them "
            f"as STRING fields ({reason}). Rename the columns, or set UNKNOWN_COLUMNS=ignore to drop them.",
        )


class ColumnPolicy:
    """Compiles a file's coercer under the policy; ``client.add_fields`` is the PATCH."""

    def __init__(self, rows: RowSettings, client: Any, schemas: SchemaCache, *, dry_run: bool) -> None:
        self.rows = rows
        self.client = client
        self.schemas = schemas
        self.dry_run = dry_run

    def coercer(self, schema: SchemaSpec, columns: list[str], *, csv: bool) -> RowCoercer:
        """The coercer for ``columns``; raises :class:`UnknownColumnsError` under ``reject``.

        JSON keys are resolved per row; the peeked rows' keys stand for the file's columns.
        """
        policy = self.rows.unknown_columns
        coercer = self._compile(schema, columns if csv else None)
        unknown = (coercer if csv else compile_coercer(schema, columns, unknown=policy)).unknown_columns
        if unknown and policy == "reject":
            raise UnknownColumnsError(schema.name, unknown)
        if unknown and policy == "add" and not self.dry_run:
            schema = self._add(schema, unknown)
            coercer = self._compile(schema, columns if csv else None)
        return coercer

    def _compile(self, schema: SchemaSpec, columns: list[str] | None) -> RowCoercer:
        return compile_coercer(
            schema, columns, unknown=self.rows.unknown_columns, naive_tz=self.rows.naive_datetime_tz
        )

    def _add(self, schema: SchemaSpec, unknown: list[str]) -> SchemaSpec:
        """PATCH the columns in as STRING fields and re-read the schema."""
        fields = {c.strip(): {"data_type": "STRING"} for c in unknown}
        try:
            self.client.add_fields(schema.name, fields)
        except BadRequestError as exc:  # Monetate refused the new fields: fail with a report
            raise FieldsRefusedError(schema.name, unknown, exc.message) from exc
        logger.info("added fields to schema", extra={"schema": schema.name, "fields": sorted(fields)})
        return self.schemas.refresh(schema.name)
