"""What becomes of a file when something fails: one table from exception class to outcome.

Every exception that ends a file goes through :func:`classify`. The first row of :data:`RULES`
whose class matches gives the report's error ``code``; ``raises`` whether the invocation raises
(Lambda's retries, then the on-failure destination) or returns; ``forget`` whether idempotency
forgets the file, so that a later delivery of the same object runs it again; and ``advice``,
what to do. Causes in the file itself return; causes in the deployment or a service raise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from monetate_ingest.delivery.bisection import PartialDeliveryError
from monetate_ingest.errors import ConfigurationError
from monetate_ingest.formats.exceptions import FileFormatError, UnknownColumnsError
from monetate_ingest.ingest.exceptions import (
    ContinuationError,
    IngestIoError,
    OutputWriteError,
    ParkingError,
    SourceReadError,
    SourceUnavailableError,
    StateStoreError,
)
from monetate_ingest.ingest.report import ReportInvariantError
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    InvalidSchemaNameError,
    KeyRevokedError,
    MonetateApiError,
    PermanentApiError,
    TransientApiError,
    UnknownSchemaError,
)

_REPLAY = "then replay the event from the IngestFailures queue: the file resumes from its checkpoint"
_UPLOAD = "then upload the file again"


@dataclass(frozen=True)
class Rule:
    """The outcome of one class of failure (see the module docstring)."""

    code: str
    raises: bool
    forget: bool
    advice: str


_DOWN = f"Lambda retries the file; if Monetate stays down, {_REPLAY}."
_BUCKET = f"Check the bucket and the function's access, {_REPLAY}."
_REFUSED = (
    "A 413 means the batch is too large (lower BATCH_MAX_BYTES or BATCH_MAX_ROWS); a 405 that the URL "
    f"does not take the method (check MONETATE_API_URL and any proxy). Fix it, {_REPLAY}."
)
RETURN, RAISE = False, True
KEEP, FORGET = False, True

#: (exception class, rule), first match wins: code, raise?, forget the file?, what to do.
RULES: tuple[tuple[type[BaseException], Rule], ...] = (
    (KeyRevokedError, Rule("key_revoked", RAISE, FORGET, f"Give the API user a new key, {_REPLAY}.")),
    (InvalidSchemaNameError, Rule("invalid_schema", RETURN, KEEP, "Use incoming/<dataset name>/.")),
    (UnknownSchemaError, Rule("unknown_schema", RETURN, FORGET, f"Create the dataset, {_UPLOAD}.")),
    (UnknownColumnsError, Rule("unknown_columns", RETURN, FORGET, f"Fix the header, {_UPLOAD}.")),
    (SourceUnavailableError, Rule("source_unavailable", RETURN, KEEP, "Nothing to do for this event.")),
    (FileFormatError, Rule("unreadable_file", RETURN, FORGET, f"Fix the place named, {_UPLOAD}.")),
    (AuthenticationError, Rule("monetate_auth_failed", RAISE, FORGET, f"Check the API user, {_REPLAY}.")),
    (ConfigurationError, Rule("configuration", RAISE, FORGET, f"Fix the setting named, {_REPLAY}.")),
    (TransientApiError, Rule("monetate_unavailable", RAISE, FORGET, _DOWN)),
    (PartialDeliveryError, Rule("monetate_unavailable", RAISE, FORGET, _DOWN)),
    (PermanentApiError, Rule("monetate_refused", RAISE, FORGET, _REFUSED)),
    (ParkingError, Rule("records_queue_unavailable", RAISE, FORGET, f"Check RECORDS_QUEUE_URL, {_REPLAY}.")),
    (StateStoreError, Rule("state_unavailable", RAISE, FORGET, f"Check IDEMPOTENCY_TABLE, {_REPLAY}.")),
    (SourceReadError, Rule("source_unreadable", RAISE, FORGET, _BUCKET)),
    (OutputWriteError, Rule("output_unwritable", RAISE, FORGET, _BUCKET)),
    (ContinuationError, Rule("continuation_failed", RAISE, FORGET, f"Check InvokeFunction, {_REPLAY}.")),
    (ReportInvariantError, Rule("internal_error", RAISE, FORGET, f"A bug: report it, {_REPLAY}.")),
    (Exception, Rule("internal_error", RAISE, FORGET, f"If a retry does not help, report it; {_REPLAY}.")),
)


@dataclass(frozen=True)
class Failure:
    """A classified failure: its rule, the report's code and message, and where it happened."""

    rule: Rule
    code: str
    message: str
    where: dict[str, Any]
    error: BaseException

    def entry(self) -> dict[str, Any]:
        """The report's ``errors`` entry."""
        return {"code": self.code, "message": self.message, **self.where}


def rule_for(exc: BaseException) -> Rule:
    """The first rule whose class ``exc`` is an instance of (the last row matches any Exception)."""
    return next(rule for cls, rule in RULES if isinstance(exc, cls))


def classify(exc: BaseException) -> Failure:
    """The failure ``exc`` stands for: what failed, where, and what to do."""
    rule = rule_for(exc)
    code = exc.code if isinstance(exc, SourceUnavailableError) else rule.code
    return Failure(rule, code, f"{_what(exc, rule)} {rule.advice}", _where(exc), exc)


def _what(exc: BaseException, rule: Rule) -> str:
    text = str(exc).strip() or type(exc).__name__
    if rule.code == "internal_error":
        text = f"{type(exc).__name__}: {text}"
    return text if text.endswith(".") else text + "."


def _where(exc: BaseException) -> dict[str, Any]:
    where: dict[str, Any] = {}
    if isinstance(exc, IngestIoError):
        where.update(exc.where)
    elif isinstance(exc, FileFormatError) and exc.line:
        where["line"] = exc.line
    elif isinstance(exc, UnknownColumnsError):
        where["columns"] = list(exc.columns)
    elif isinstance(exc, PartialDeliveryError):
        exc = exc.cause
    if isinstance(exc, MonetateApiError):
        if exc.url:
            where["call"] = urlsplit(exc.url).path
        if exc.status:
            where["status"] = exc.status
    return where
