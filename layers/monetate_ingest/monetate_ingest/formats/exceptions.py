"""Errors of reading a file or a row: the file cannot be read on, or one row is invalid."""

from __future__ import annotations

from monetate_ingest.errors import MonetateIngestError


class FileFormatError(MonetateIngestError):
    """The file cannot be read any further (truncated gzip, bomb, not JSON at all …)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class UnknownColumnsError(MonetateIngestError):
    """Columns that are not in the schema, under ``UNKNOWN_COLUMNS=reject``."""

    def __init__(self, schema: str, columns: list[str]) -> None:
        self.schema = schema
        self.columns = list(columns)
        names = ", ".join(repr(c) for c in columns)
        super().__init__(
            f"columns {names} are not fields of schema {schema!r}. Add them to the schema "
            f"(`python -m monetate_ingest schema add-field {schema} FIELD STRING`), set "
            "UNKNOWN_COLUMNS=ignore to drop them, or UNKNOWN_COLUMNS=add to add them as STRING."
        )


class RowError(MonetateIngestError):
    """One row is invalid; ``field`` names the column when there is one."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
