"""The project's exception hierarchy.

Every error a caller must act on is one of three kinds, read from the class attribute ``kind``:

* ``configuration`` - the deployment is wrong (settings, secret, key). Never retried; fix and redeploy.
* ``permanent``     - this request or these rows will never succeed as they are (400, 404, revoked key).
* ``transient``     - try again later (429, 5xx, timeouts, connection errors, a non-JSON proxy page).

Messages never contain key material, JWTs or tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

ErrorKind = Literal["configuration", "permanent", "transient"]


class MonetateIngestError(Exception):
    """Base of every error raised by this package."""

    kind: ClassVar[ErrorKind] = "permanent"

    @property
    def retryable(self) -> bool:
        return self.kind == "transient"


# --- configuration -------------------------------------------------------------------------


class ConfigurationError(MonetateIngestError):
    """A setting, the secret or the key is missing or malformed."""

    kind: ClassVar[ErrorKind] = "configuration"


class SettingsError(ConfigurationError):
    """An environment variable is missing or malformed; the message names it."""


class CredentialsError(ConfigurationError):
    """The secret is not the documented JSON shape, or its private key cannot be loaded."""


# --- Monetate API ----------------------------------------------------------------------------


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


# --- data ------------------------------------------------------------------------------------


class UnknownSchemaError(PermanentApiError):
    """The dataset named by the S3 path or the envelope does not exist in Monetate."""


class FileFormatError(MonetateIngestError):
    """The file cannot be read any further (truncated gzip, bomb, not JSON at all …)."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class UnknownColumnsError(MonetateIngestError):
    """Columns that are not in the schema, under ``UNKNOWN_COLUMNS=reject``."""

    def __init__(self, schema: str, columns: list[str]) -> None:
        self.schema = schema
        self.columns = list(columns)
        names = ", ".join(repr(c) for c in columns)
        super().__init__(
            f"columns {names} are not fields of schema {schema!r}. Add them to the schema "
            f"(`python -m monetate_ingest schema add-field {schema} FIELD STRING`), set "
            "UNKNOWN_COLUMNS=ignore to drop them, or UNKNOWN_COLUMNS=add to add them as STRING."
        )


class RowError(MonetateIngestError):
    """One row is invalid; ``field`` names the column when there is one."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class EnvelopeError(MonetateIngestError):
    """An SQS message body is not the documented envelope; ``code`` is its ``error_type``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
