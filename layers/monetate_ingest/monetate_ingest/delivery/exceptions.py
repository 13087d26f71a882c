"""Errors of the SQS envelope."""

from __future__ import annotations

from monetate_ingest.errors import MonetateIngestError


class EnvelopeError(MonetateIngestError):
    """An SQS message body is not the documented envelope; ``code`` is its ``error_type``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
