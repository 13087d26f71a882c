"""The record key of each row of a batch: the field under which Monetate keeps one record.

The unique key when the schema has one, else the identifier. Keys are read from the rows'
encoded JSON (``Batch.encoded``) without decoding them: the encoder writes ``"name":"value"``
with an unescaped quote before the name, which a value's own quotes (always ``\\"``) cannot
imitate, so a byte search finds the field; a value holding an escape is decoded properly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from monetate_ingest.monetate.schema import SchemaSpec


def key_field(schema: SchemaSpec) -> str | None:
    """The field whose value names the record (unique key, else identifier)."""
    return schema.unique_key or schema.identifier


class KeyReader:
    """Reads one field's value out of encoded rows; rows without it give None."""

    def __init__(self, field: str) -> None:
        self.field = field
        self._needle = (json.dumps(field, ensure_ascii=False) + ":").encode()
        self._all = re.compile(re.escape(self._needle) + rb'"([^"\\]*)"')
        self._escaped = re.escape(self._needle) + rb'"[^"\\]*\\'
        self._has_escape = re.compile(self._escaped)

    def keys(self, encoded: Sequence[bytes]) -> list[bytes | None]:
        """One key per row, in order (None for a row without the field)."""
        return [self.key(data) for data in encoded]

    def key_set(self, body: bytes) -> set[bytes]:
        """The distinct keys of a whole POST body in one pass (the per-key order's hot path)."""
        if b"\\" in body and self._has_escape.search(body):  # a key with an escape: row by row
            rows = body[len(b'{"schema_rows":[') : -2]
            return {k for k in self.keys(_split_rows(rows)) if k is not None}
        return set(self._all.findall(body))

    def key(self, data: bytes) -> bytes | None:
        at = data.find(self._needle)
        if at < 0:
            return None
        start = at + len(self._needle)
        if data[start : start + 1] != b'"':  # not a string: read the row properly
            return self._decoded(data)
        end = data.find(b'"', start + 1)
        if end < 0 or b"\\" in data[start + 1 : end]:
            return self._decoded(data)
        return data[start + 1 : end]

    def _decoded(self, data: bytes) -> bytes | None:
        value = json.loads(data).get(self.field)
        if value is None:
            return None
        text = json.dumps(value, ensure_ascii=False)[1:-1] if isinstance(value, str) else str(value)
        return text.encode()


def _split_rows(rows: bytes) -> list[bytes]:
    """The rows of a body's array, by decoding it (only for keys holding an escape: rare)."""
    from monetate_ingest.formats.encoding import encode_row

    return [encode_row(r).encode() for r in json.loads(b"[" + rows + b"]")]
