"""Streaming row readers for CSV, JSON lines and JSON arrays, optionally gzip-compressed.

:func:`open_rows` picks the format from the S3 key's suffix and gzip by its magic bytes; memory
stays flat whatever the file size. Broken rows come back as :class:`SourceRow` with ``error``
set; a file that cannot be read any further raises :class:`~monetate_ingest.errors.FileFormatError`
from iteration, after the rows read so far.
"""

from __future__ import annotations

from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers.base import FileFormat, RowSource, SourceRow
from monetate_ingest.formats.readers.csv_rows import CsvRows
from monetate_ingest.formats.readers.decompress import Readable, open_binary, open_text
from monetate_ingest.formats.readers.json_rows import JsonArrayRows, JsonLinesRows
from monetate_ingest.formats.readers.read_ahead import ReadAhead

__all__ = ["FileFormat", "RowSource", "SourceRow", "detect_format", "open_rows"]

DEFAULT_MAX_DECOMPRESSED_BYTES = 20 * 1024**3
DEFAULT_MAX_COMPRESSION_RATIO = 200


def detect_format(key: str) -> FileFormat:
    """'csv', 'jsonl' or 'json' from the key's suffix (a trailing ``.gz`` is ignored)."""
    name = key.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    raise FileFormatError(
        f"cannot tell the format of {key!r}: name it .csv, .jsonl, .ndjson or .json (optionally .gz)"
    )


def open_rows(
    stream: Readable,
    key: str,
    *,
    delimiter: str = ",",
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_compression_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO,
    read_ahead: bool = False,
) -> RowSource:
    """Rows of ``stream`` (the object's bytes) in the format its ``key`` names.

    ``read_ahead``: read ``stream`` on a background thread (:class:`ReadAhead`); then call the
    source's ``close()`` when done.
    """
    fmt = detect_format(key)
    ahead = ReadAhead(stream) if read_ahead else None
    binary = open_binary(
        stream if ahead is None else ahead,
        max_decompressed_bytes=max_decompressed_bytes,
        max_compression_ratio=max_compression_ratio,
    )
    text = open_text(binary)
    source: RowSource
    if fmt == "csv":
        source = CsvRows(text, delimiter)
    elif fmt == "jsonl":
        source = JsonLinesRows(text)
    else:
        source = JsonArrayRows(text)
    if ahead is not None:
        source.closers.append(ahead.close)
    return source
