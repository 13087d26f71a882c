"""The file's S3 object and what IngestFile writes next to it.

:class:`SourceObject` opens the object the event named (``IfMatch`` its ETag: an object gone or
replaced since is a clear :class:`SourceUnavailableError`, not a crash), writes the report, and
makes the rejects writer over the same bucket.
"""

from __future__ import annotations

from typing import Any

from monetate_ingest.errors import MonetateIngestError
from monetate_ingest.ingest.rejects import RejectsWriter
from monetate_ingest.ingest.report import Report
from monetate_ingest.ingest.s3_layout import FileRef


class SourceUnavailableError(MonetateIngestError):
    """The object named by the event is gone or was replaced: the file fails with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SourceObject:
    """One file's object in S3 (``s3`` is a boto3 S3 client or a stand-in with the same calls)."""

    def __init__(self, s3: Any, ref: FileRef) -> None:
        self.s3 = s3
        self.ref = ref

    def open(self) -> Any:
        """The object's streaming body, as the event saw it (same ETag)."""
        from botocore.exceptions import ClientError

        ref = self.ref
        try:
            return self.s3.get_object(Bucket=ref.bucket, Key=ref.key, IfMatch=ref.etag)["Body"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412"):
                raise SourceUnavailableError(
                    "object_changed",
                    f"s3://{ref.bucket}/{ref.key} was replaced after this event (ETag "
                    f"{ref.etag} is gone); the newer upload is processed by its own event",
                ) from None
            if code in ("NoSuchKey", "404"):
                raise SourceUnavailableError(
                    "object_missing", f"s3://{ref.bucket}/{ref.key} was deleted before it was read"
                ) from None
            raise

    def rejects(self, parts: list[str]) -> RejectsWriter:
        """The rejects writer, continuing from the parts an earlier invocation stored."""
        return RejectsWriter(self.s3, self.ref, parts)

    def write_report(self, report: Report) -> None:
        self.s3.put_object(
            Bucket=self.ref.bucket,
            Key=self.ref.report_key,
            Body=report.to_json(),
            ContentType="application/json",
        )
