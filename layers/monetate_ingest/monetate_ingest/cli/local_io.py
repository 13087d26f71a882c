"""Local stand-ins for the S3 and SQS calls :class:`~monetate_ingest.ingest.job.FileIngest` makes,
so ``push`` runs the real pipeline on a laptop file without any bucket.

Keys that are absolute paths are those files (the input, its report and rejects next to it); any
other key (the rejects' scratch parts) lives in a temporary directory. A local file answers like an
S3 object with no tags and no user metadata: its ``LastModified`` is its mtime in whole seconds,
its ETag :func:`local_etag` (change-only sync's source time and origin).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from monetate_ingest.ingest.s3_layout import FileRef


def local_etag(stat: os.stat_result) -> str:
    """A local file's stand-in for an ETag: its size and mtime (a changed file gets another one)."""
    return f"{stat.st_size:x}-{stat.st_mtime_ns:x}"


def _last_modified(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(int(stat.st_mtime), UTC)  # whole seconds, like S3


class LocalFileRef(FileRef):
    """A :class:`FileRef` whose ``key`` is a local path; report and rejects go next to the file."""

    @property
    def report_key(self) -> str:
        return self.key + ".report.json"

    @property
    def rejects_key(self) -> str:
        return self.key + ".rejects.jsonl"

    @property
    def parked_path(self) -> str:
        return self.key + ".parked.jsonl"


class CountingReader(io.RawIOBase):
    """A read-only binary file that counts the bytes handed out (for the progress bar)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self.bytes_read += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._raw.close()
        super().close()


class LocalS3:
    """``get_object``, ``put_object``, ``upload_fileobj``, ``list_objects_v2`` pages, ``delete_objects``."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.readers: dict[str, CountingReader] = {}
        self._scratch_keys: set[str] = set()
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        if os.path.isabs(key):
            return Path(key)
        return self.scratch / quote(key, safe="")

    def get_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None, **_: Any) -> dict[str, Any]:
        try:
            handle = self.path(Key).open("rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"no such local object {Key!r}") from None
        reader = CountingReader(handle)
        with self._lock:
            self.readers[Key] = reader
        return {"Body": reader, **self.head_object(Bucket=Bucket, Key=Key)}

    def head_object(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        """Size, ``LastModified``, ETag; a local file has no user metadata."""
        try:
            stat = self.path(Key).stat()
        except FileNotFoundError:
            raise FileNotFoundError(f"no such local object {Key!r}") from None
        return {
            "ContentLength": stat.st_size,
            "LastModified": _last_modified(stat),
            "ETag": f'"{local_etag(stat)}"',
            "Metadata": {},
        }

    def get_object_tagging(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        """A local file has no tags (``push --sync all`` forces a full post instead)."""
        return {"TagSet": []}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes | str | IO[bytes], **_: Any) -> dict[str, Any]:
        if isinstance(Body, str):
            Body = Body.encode()
        if isinstance(Body, bytes):
            Body = io.BytesIO(Body)
        self._write(Key, Body)
        return {}

    def upload_fileobj(self, Fileobj: IO[bytes], Bucket: str, Key: str, ExtraArgs: Any = None) -> None:
        self._write(Key, Fileobj)

    def _write(self, key: str, source: IO[bytes]) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".tmp")
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        partial.replace(target)
        if not os.path.isabs(key):
            with self._lock:
                self._scratch_keys.add(key)

    def get_paginator(self, name: str) -> _ListPaginator:
        if name != "list_objects_v2":
            raise NotImplementedError(f"the local S3 stand-in has no {name} paginator")
        return _ListPaginator(self)

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any], **_: Any) -> dict[str, Any]:
        for item in Delete.get("Objects", []):
            key = str(item["Key"])
            self.path(key).unlink(missing_ok=True)
            with self._lock:
                self._scratch_keys.discard(key)
        return {}

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(k for k in self._scratch_keys if k.startswith(prefix))


class _ListPaginator:
    def __init__(self, s3: LocalS3) -> None:
        self.s3 = s3

    def paginate(self, *, Bucket: str, Prefix: str = "", **_: Any) -> Iterator[dict[str, Any]]:
        yield {"Contents": [{"Key": k} for k in self.s3.keys(Prefix)]}


class FileQueue:
    """``send_message`` appending each message body as one line of a local JSON-lines file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent = 0
        self._lock = threading.Lock()

    def send_message(self, *, QueueUrl: str, MessageBody: str, **_: Any) -> dict[str, Any]:
        line = json.dumps(json.loads(MessageBody), ensure_ascii=False, separators=(",", ":"))
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")
            self.sent += 1
            return {"MessageId": str(self.sent)}
