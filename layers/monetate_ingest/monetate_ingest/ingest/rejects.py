"""The rejects file: one JSON line per refused row, ``{"line", "reason", "field"?, "raw"}``.

A file may take several invocations (continuation) and one may die part-way, so rejects are written
as numbered part objects under the file's scratch prefix whenever a checkpoint is taken; the
checkpoint lists the parts that count. When the file ends, the parts are streamed into the one
rejects object of the contract and deleted. Parts a crashed invocation wrote after its last
checkpoint are not listed, so they are ignored and cleaned up. A failed S3 write raises
:class:`OutputWriteError` naming the key, and keeps the lines buffered (see ``buffered``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from monetate_ingest.ingest.exceptions import OutputWriteError, describe_aws_error
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.observability import logger

_RAW_LIMIT = 10_000  # characters of a raw row kept in the rejects file


def reject_line(line: int, reason: str, raw: Any, field: str | None = None) -> bytes:
    """One JSON line of the rejects file (``raw`` capped so one huge row cannot bloat it)."""
    entry: dict[str, Any] = {"line": line, "reason": reason}
    if field:
        entry["field"] = field
    if isinstance(raw, str) and len(raw) > _RAW_LIMIT:
        raw = raw[:_RAW_LIMIT] + "…"
    entry["raw"] = raw
    return json.dumps(entry, ensure_ascii=False, default=str).encode() + b"\n"


class RejectsWriter:
    """Buffers reject lines in memory/``/tmp`` and flushes them to S3 as parts."""

    def __init__(
        self, s3: Any, ref: FileRef, parts: list[str] | None = None, pending: list[str] | None = None
    ) -> None:
        self.s3 = s3
        self.ref = ref
        self.parts: list[str] = list(parts or [])
        self._buffer = io.BytesIO()
        self.count_buffered = 0
        for line in pending or []:  # lines an earlier invocation could not write
            self.add(line.encode())

    def add(self, data: bytes) -> None:
        self._buffer.write(data)
        self.count_buffered += 1

    def buffered(self) -> bytes:
        """The lines not written yet."""
        return self._buffer.getvalue()

    def flush(self) -> list[str]:
        """Write what is buffered as the next part; return the list of parts that count."""
        if self.count_buffered:
            key = f"{self.ref.scratch_prefix}{len(self.parts):06d}.jsonl"
            with self._writing(key):
                self.s3.put_object(Bucket=self.ref.bucket, Key=key, Body=self._buffer.getvalue())
            self.parts.append(key)
            self._buffer = io.BytesIO()
            self.count_buffered = 0
        return list(self.parts)

    def finish(self, *, keep_parts: bool = False) -> str | None:
        """Join the parts into the rejects object and return its key.

        The scratch prefix is deleted unless ``keep_parts`` (a failed file that may be resumed).
        """
        self.flush()
        key: str | None = None
        if self.parts:
            with self._writing(self.ref.rejects_key):
                self.s3.upload_fileobj(
                    _Concatenated(self._part_chunks()),
                    self.ref.bucket,
                    self.ref.rejects_key,
                    ExtraArgs={"ContentType": "application/x-ndjson"},
                )
            key = self.ref.rejects_key
        if not keep_parts:
            try:
                self._delete_scratch()
            except Exception as exc:  # cleanup only: the rejects object is written
                logger.warning(
                    "could not delete the rejects' scratch parts",
                    extra={"prefix": self.ref.scratch_prefix, "error": describe_aws_error(exc)},
                )
            self.parts = []
        return key

    @contextmanager
    def _writing(self, key: str) -> Iterator[None]:
        try:
            yield
        except OutputWriteError:
            raise
        except Exception as exc:  # botocore's errors, named for the report
            raise OutputWriteError(
                f"could not write the rejects to s3://{self.ref.bucket}/{key}: {describe_aws_error(exc)}",
                bucket=self.ref.bucket,
                key=key,
            ) from exc

    def _part_chunks(self) -> Iterator[bytes]:
        for part in self.parts:
            body = self.s3.get_object(Bucket=self.ref.bucket, Key=part)["Body"]
            while chunk := body.read(1 << 20):
                yield chunk

    def _delete_scratch(self) -> None:
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.ref.bucket, Prefix=self.ref.scratch_prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.s3.delete_objects(Bucket=self.ref.bucket, Delete={"Objects": keys, "Quiet": True})


class _Concatenated(io.RawIOBase):
    """A read-only file over a sequence of byte chunks (for a streaming upload)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n
