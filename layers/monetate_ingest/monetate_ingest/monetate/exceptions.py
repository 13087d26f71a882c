"""Errors of the Monetate API and of the credentials: what an answer (or its lack) means to the caller.

Each class carries a ``kind`` (see :mod:`monetate_ingest.errors`). Messages never contain key
material, JWTs or tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

from monetate_ingest.errors import ConfigurationError, ErrorKind, MonetateIngestError


class CredentialsError(ConfigurationError):
    """The secret is not the documented JSON shape, or its private key cannot be loaded."""


class MonetateApiError(MonetateIngestError):
    """An answer (or lack of one) from Monetate that the caller must handle."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        meta_errors: list[Any] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.meta_errors: list[Any] = list(meta_errors or [])
        self.url = url


class TransientApiError(MonetateApiError):
    """Worth retrying later: 5xx, timeouts and connection errors after the client's own retries."""

    kind: ClassVar[ErrorKind] = "transient"


class RateLimitedError(TransientApiError):
    """429 from Monetate; ``retry_after`` is the server's hint in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class DeadlineExceededError(TransientApiError):
    """A call stopped short of the caller's deadline: a retry would have slept past it, or no time
    was left to send. The rows are not lost: the caller leaves them for the next invocation."""


class UnexpectedResponseError(TransientApiError):
    """The answer was not Monetate's JSON envelope (an HTML page from a proxy, say)."""


class PermanentApiError(MonetateApiError):
    """Will not succeed as sent."""


class BadRequestError(PermanentApiError):
    """400: Monetate refused the request; ``meta_errors`` holds its ``meta.errors``."""


class NotFoundError(PermanentApiError):
    """404: no such schema or record."""


class AuthenticationError(PermanentApiError):
    """401 that a freshly minted token did not cure, or a refused JWT."""


class KeyRevokedError(PermanentApiError):
    """403: the API user's key was revoked. Stop calling Monetate; never retry."""


class UnknownSchemaError(PermanentApiError):
    """The dataset named by the S3 path or the envelope does not exist in Monetate."""


class InvalidSchemaNameError(UnknownSchemaError):
    """The schema name breaks the naming rule (:mod:`monetate_ingest.monetate.names`): no such
    dataset can exist, and the name never reaches a URL. Handled as an unknown schema by callers
    that do not tell the two apart."""
