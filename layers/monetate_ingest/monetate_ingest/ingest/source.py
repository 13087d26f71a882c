"""The file's S3 object and what IngestFile writes next to it.

:class:`SourceObject` opens the object the event named (``IfMatch`` its ETag: an object gone or
replaced since is a clear :class:`SourceUnavailableError`, not a crash), writes the report, makes
the rejects writer over the same bucket, and keeps a backup of the checkpoint under the file's
scratch prefix for when the checkpoint table cannot be written. Failed calls raise
:class:`SourceReadError` or :class:`OutputWriteError` naming the object.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from monetate_ingest.ingest.checkpoints import Checkpoint
from monetate_ingest.ingest.exceptions import (
    OutputWriteError,
    SourceReadError,
    SourceUnavailableError,
    describe_aws_error,
)
from monetate_ingest.ingest.rejects import RejectsWriter
from monetate_ingest.ingest.report import Report
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.observability import logger

BACKUP_NAME = "checkpoint.json"
_MISSING = ("NoSuchKey", "404")


class SourceObject:
    """One file's object in S3 (``s3`` is a boto3 S3 client or a stand-in with the same calls)."""

    def __init__(self, s3: Any, ref: FileRef) -> None:
        self.s3 = s3
        self.ref = ref
        self.backup_key = ref.scratch_prefix + BACKUP_NAME
        #: The object's ``LastModified`` (epoch seconds) and user metadata, once opened.
        self.last_modified: float | None = None
        self.metadata: dict[str, str] = {}

    def open(self) -> Any:
        """The object's streaming body, as the event saw it (same ETag)."""
        ref = self.ref
        try:
            response = self.s3.get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=ref.etag)
            modified = response.get("LastModified")
            self.last_modified = modified.timestamp() if isinstance(modified, datetime) else None
            self.metadata = dict(response.get("Metadata") or {})
            return response["Body"]
        except Exception as exc:
            code = _code(exc)
            if code in ("PreconditionFailed", "412"):
                raise SourceUnavailableError(
                    "object_changed",
                    f"s3://{ref.bucket}/{ref.key} was replaced after this event (ETag "
                    f"{ref.etag} is gone); the newer upload is processed by its own event",
                ) from None
            if code in _MISSING:
                raise SourceUnavailableError(
                    "object_missing", f"s3://{ref.bucket}/{ref.key} was deleted before it was read"
                ) from None
            raise self._read_error(ref.key, exc) from exc

    def tags(self) -> dict[str, str]:
        """The object's tags; an empty dict when they cannot be read (logged: a tag only ever
        asks for more to be posted, so not reading it loses nothing)."""
        ref = self.ref
        try:
            response = self.s3.get_object_tagging(Bucket=ref.bucket, Key=ref.key)
        except Exception as exc:
            logger.warning(
                "could not read the file's tags; a monetate-sync tag is not seen",
                extra={"file": ref.identity, "error": describe_aws_error(exc)},
            )
            return {}
        return {str(t.get("Key")): str(t.get("Value")) for t in response.get("TagSet", [])}

    def rejects(self, parts: list[str], pending: list[str] | None = None) -> RejectsWriter:
        """The rejects writer, continuing from the parts (and lines) an earlier invocation kept."""
        return RejectsWriter(self.s3, self.ref, parts, pending)

    def write_report(self, report: Report) -> None:
        body = report.to_json()
        try:
            self.s3.put_object(
                Bucket=self.ref.bucket, Key=self.ref.report_key, Body=body, ContentType="application/json"
            )
        except Exception as exc:
            raise self._write_error(self.ref.report_key, "the report", exc) from exc

    # -- the checkpoint's backup ----------------------------------------------------------------

    def load_backup(self) -> Checkpoint | None:
        """The checkpoint saved here when the table failed, if any."""
        try:
            body = self.s3.get_object(Bucket=self.ref.bucket, Key=self.backup_key)["Body"]
        except FileNotFoundError:  # the CLI's local stand-in for S3
            return None
        except Exception as exc:
            if _code(exc) in _MISSING:
                return None
            raise self._read_error(self.backup_key, exc) from exc
        return Checkpoint.from_json(body.read().decode())

    def save_backup(self, checkpoint: Checkpoint) -> None:
        try:
            body = checkpoint.to_json().encode()
            self.s3.put_object(Bucket=self.ref.bucket, Key=self.backup_key, Body=body)
        except Exception as exc:
            raise self._write_error(self.backup_key, "the checkpoint's backup", exc) from exc

    def _read_error(self, key: str, exc: Exception) -> SourceReadError:
        return SourceReadError(
            f"could not read s3://{self.ref.bucket}/{key}: {describe_aws_error(exc)}",
            bucket=self.ref.bucket,
            key=key,
        )

    def _write_error(self, key: str, what: str, exc: Exception) -> OutputWriteError:
        return OutputWriteError(
            f"could not write {what} to s3://{self.ref.bucket}/{key}: {describe_aws_error(exc)}",
            bucket=self.ref.bucket,
            key=key,
        )


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    error = response.get("Error", {}) if isinstance(response, dict) else {}
    return str(error.get("Code", ""))
