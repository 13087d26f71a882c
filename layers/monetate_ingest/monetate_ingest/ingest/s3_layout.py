"""Where a file's schema comes from, and where its report, rejects and scratch objects go.

Files land under ``incoming/<schema>/…`` (or ``dry-run/<schema>/…``); :func:`route` turns a key
into a :class:`FileRef` with its report, rejects and scratch keys, or an :class:`Ignored`. S3 keys
are at most 1,024 bytes: when a long source key would make a longer one, the file's name in it is
shortened and ends in ``~`` and 16 hex digits of the SHA-256 of ``<schema>/<name>``
(:func:`fit_key`), so every file still gets its own report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

INCOMING = "incoming/"
DRY_RUN = "dry-run/"
#: S3's limit on a key, in bytes of UTF-8.
MAX_KEY_BYTES = 1_024
#: Room kept after the scratch prefix for the names of the objects under it.
_SCRATCH_NAME_BYTES = 32


def fit_key(prefix: str, name: str, suffix: str, *, limit: int = MAX_KEY_BYTES) -> str:
    """``prefix + name + suffix``; ``name`` shortened (``…~<sha256:16>``) if that is over ``limit`` bytes."""
    key = prefix + name + suffix
    if len(key.encode()) <= limit:
        return key
    digest = "~" + hashlib.sha256(name.encode()).hexdigest()[:16]
    room = limit - len((prefix + suffix + digest).encode())
    kept = name.encode()[: max(room, 0)].decode(errors="ignore")  # never half a character
    return prefix + kept + digest + suffix


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
        return fit_key("reports/", self._path, ".report.json")

    @property
    def rejects_key(self) -> str:
        return fit_key("rejects/", self._path, ".rejects.jsonl")

    @property
    def scratch_prefix(self) -> str:
        """Where in-progress reject parts and the state backup live until the file completes."""
        return fit_key(
            "rejects/.parts/", self._path, f"/{self.etag}/", limit=MAX_KEY_BYTES - _SCRATCH_NAME_BYTES
        )

    @property
    def _path(self) -> str:
        return f"{self._area}{self.schema}/{self.name}"

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
