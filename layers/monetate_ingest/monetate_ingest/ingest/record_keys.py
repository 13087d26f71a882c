"""The record key of each row of a batch: the field under which Monetate keeps one record.

The unique key when the schema has one, else the identifier. Keys are read from the rows'
encoded JSON (``Batch.encoded``) without decoding them: the encoder writes ``"name":"value"``
with an unescaped quote before the name, which a value's own quotes (always ``\\"``) cannot
imitate, so a byte search finds the field; a value holding an escape is decoded properly.
"""

from __future__ import annotations

import json
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

    def keys(self, encoded: Sequence[bytes]) -> list[bytes | None]:
        return [self.key(data) for data in encoded]

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
