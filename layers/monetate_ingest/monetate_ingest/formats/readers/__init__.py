"""Streaming row readers for CSV, JSON lines and JSON arrays, optionally gzip-compressed.

:func:`open_rows` picks the format from the S3 key's suffix and gzip by its magic bytes; memory
stays flat whatever the file size. Broken rows come back as :class:`SourceRow` with ``error``
set (a CSV field over ``max_field_bytes``, a JSON value that cannot be decoded …) and reading goes
on; a file that cannot be read any further raises
:class:`~monetate_ingest.formats.exceptions.FileFormatError` from iteration, after the rows read
so far.
"""

from __future__ import annotations

from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers.base import FileFormat, RowSource, SourceRow
from monetate_ingest.formats.readers.csv_rows import DEFAULT_MAX_FIELD_BYTES, CsvRows
from monetate_ingest.formats.readers.decompress import LongLines, Readable, open_binary, open_text
from monetate_ingest.formats.readers.json_rows import JsonArrayRows, JsonLinesRows
from monetate_ingest.formats.readers.read_ahead import ReadAhead

__all__ = [
    "DEFAULT_MAX_COMPRESSION_RATIO",
    "DEFAULT_MAX_DECOMPRESSED_BYTES",
    "DEFAULT_MAX_FIELD_BYTES",
    "FileFormat",
    "RowSource",
    "SourceRow",
    "detect_format",
    "open_rows",
]

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
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES,
    read_ahead: bool = False,
) -> RowSource:
    """Rows of ``stream`` (the object's bytes) in the format its ``key`` names.

    ``max_field_bytes`` (CSV): the longest field, in bytes of UTF-8; a row with a longer one is
    rejected and reading goes on. ``read_ahead``: read ``stream`` on a background thread
    (:class:`ReadAhead`); then call the source's ``close()`` when done.
    """
    fmt = detect_format(key)
    if max_field_bytes < 1:
        raise ValueError(f"max_field_bytes must be at least 1, not {max_field_bytes}")
    long_lines = LongLines(max_field_bytes) if fmt == "csv" else None
    ahead = ReadAhead(stream) if read_ahead else None
    binary = open_binary(
        stream if ahead is None else ahead,
        max_decompressed_bytes=max_decompressed_bytes,
        max_compression_ratio=max_compression_ratio,
        long_lines=long_lines,
    )
    text = open_text(binary)
    source: RowSource
    if fmt == "csv":
        source = CsvRows(text, delimiter, max_field_bytes=max_field_bytes, long_lines=long_lines)
    elif fmt == "jsonl":
        source = JsonLinesRows(text)
    else:
        source = JsonArrayRows(text)
    if ahead is not None:
        source.closers.append(ahead.close)
    return source
