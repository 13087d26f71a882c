"""Which S3 objects an event names, and where their report and rejects go.

Files land under ``incoming/<schema>/…`` (or ``dry-run/<schema>/…``); :class:`FileRef` is one of
them with its report, rejects and scratch keys; :class:`Ignored` is a record that is not ours.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event

INCOMING = "incoming/"
DRY_RUN = "dry-run/"


@dataclass(frozen=True)
class FileRef:
    """One object to ingest. ``name`` is the key less ``incoming/<schema>/`` (subfolders kept)."""

    bucket: str
    key: str
    etag: str
    size: int
    schema: str
    name: str
    dry_run: bool = False

    @property
    def report_key(self) -> str:
        return f"reports/{self._area}{self.schema}/{self.name}.report.json"

    @property
    def rejects_key(self) -> str:
        return f"rejects/{self._area}{self.schema}/{self.name}.rejects.jsonl"

    @property
    def scratch_prefix(self) -> str:
        """Where in-progress reject parts live until the file completes (under ``rejects/``)."""
        return f"rejects/.parts/{self._area}{self.schema}/{self.name}/{self.etag}/"

    @property
    def _area(self) -> str:
        return "dry-run/" if self.dry_run else ""

    @property
    def identity(self) -> str:
        """bucket/key/ETag: the same object delivered twice is the same file."""
        return f"{self.bucket}/{self.key}#{self.etag}"

    def source(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "size": self.size}

    def to_payload(self) -> dict[str, Any]:
        return {**self.source(), "schema": self.schema, "name": self.name, "dry_run": self.dry_run}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> FileRef:
        return cls(
            bucket=str(data["bucket"]),
            key=str(data["key"]),
            etag=str(data["etag"]),
            size=int(data["size"]),
            schema=str(data["schema"]),
            name=str(data["name"]),
            dry_run=bool(data.get("dry_run", False)),
        )


@dataclass(frozen=True)
class Ignored:
    """A record this function does not ingest, and why (logged, never an error)."""

    bucket: str
    key: str
    reason: str


def route(bucket: str, key: str, etag: str, size: int) -> FileRef | Ignored:
    """Map a decoded key to a :class:`FileRef`, or say why it is not ours."""
    if key.startswith(INCOMING):
        prefix, dry = INCOMING, False
    elif key.startswith(DRY_RUN):
        prefix, dry = DRY_RUN, True
    else:
        return Ignored(bucket, key, f"key is outside {INCOMING} and {DRY_RUN}")
    rest = key[len(prefix) :]
    if key.endswith("/"):
        return Ignored(bucket, key, "key is a folder marker")
    schema, sep, name = rest.partition("/")
    if not sep or not schema or not name:
        return Ignored(bucket, key, f"expected {prefix}<schema>/<file>, found no file under a schema folder")
    etag = etag.strip('"')
    return FileRef(bucket=bucket, key=key, etag=etag, size=size, schema=schema, name=name, dry_run=dry)


def files_in_event(event: Mapping[str, Any]) -> Iterator[FileRef | Ignored]:
    """Every ObjectCreated record of an S3 event, keys URL-decoded (``+`` is a space)."""
    for record in S3Event(dict(event)).records:
        if not record.event_name.startswith("ObjectCreated"):
            yield Ignored(record.s3.bucket.name, record.s3.get_object.key, f"event {record.event_name}")
            continue
        obj = record.s3.get_object
        yield route(record.s3.bucket.name, unquote_plus(obj.key), obj.etag, obj.size)
