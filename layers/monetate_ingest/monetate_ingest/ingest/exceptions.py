"""Errors of IngestFile's own I/O: each says which call failed on what, in ``where``.

The AWS calls a file needs (S3, SQS, DynamoDB, Lambda) raise these instead of botocore's errors,
so :mod:`~monetate_ingest.ingest.failures` can tell them apart and the report can name the bucket,
queue, table or function. Messages carry the AWS error code and text, never credentials.
"""

from __future__ import annotations

from typing import Any, ClassVar

from monetate_ingest.errors import ErrorKind, MonetateIngestError


def describe_aws_error(exc: BaseException) -> str:
    """``Code: message`` of a botocore ClientError, else the exception's type and text."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class IngestIoError(MonetateIngestError):
    """A call IngestFile made to AWS failed; ``where`` names the call and its target."""

    kind: ClassVar[ErrorKind] = "transient"

    def __init__(self, message: str, **where: Any) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class SourceUnavailableError(MonetateIngestError):
    """The object named by the event is gone or was replaced: the file fails with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SourceReadError(IngestIoError):
    """The file's object (or its saved state) could not be read from S3."""


class OutputWriteError(IngestIoError):
    """The report, the rejects or the state backup could not be written to S3."""


class StateStoreError(IngestIoError):
    """The DynamoDB table of checkpoints and idempotency records could not be read or written."""


class ParkingError(IngestIoError):
    """Rows Monetate kept failing on could not be sent to the records queue."""


class ContinuationError(IngestIoError):
    """The function could not invoke itself to continue the file."""


class EventError(MonetateIngestError):
    """The invocation's event is not an S3 notification nor a continuation of this function."""
