"""The one place where the spot check's exceptions become responses ``{"message", "error"}``.

============================================  ======  ======================
exception                                     status  ``error``
============================================  ======  ======================
:class:`.InvalidRequest` (bad schema or id)   400     ``invalid_schema_name`` / ``invalid_id``
unknown route                                 404     ``no_such_route``
:class:`.MethodNotAllowed` (not a GET)        405     ``method_not_allowed`` (+ ``Allow: GET``)
``NotFoundError``, :class:`.NoSuchRecord`     404     ``not_found``
:class:`~.pacing.PaceExceeded`                429     ``too_many_lookups`` (+ ``Retry-After``)
``RateLimitedError``                          429     ``rate_limited`` (+ ``Retry-After``)
``BadRequestError``                           400     ``monetate_bad_request``
``KeyRevokedError``                           502     ``key_revoked`` (metric ``KeyRevoked``)
``AuthenticationError``                       502     ``upstream_auth_failed``
Transient / unexpected / other API errors     502     ``upstream_error``
``requests`` timeouts, connection errors      502     ``upstream_unavailable``
``ConfigurationError``                        500     ``misconfigured``
anything else                                 500     ``internal_error``
============================================  ======  ======================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import requests
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from monetate_ingest.errors import ConfigurationError
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    BadRequestError,
    KeyRevokedError,
    MonetateApiError,
    NotFoundError,
    RateLimitedError,
)
from monetate_ingest.observability import MetricsSink
from monetate_ingest.spotcheck.pacing import PaceExceeded
from monetate_ingest.spotcheck.validation import (
    ALLOWED_METHODS,
    RECORDS_PATH,
    InvalidRequest,
    MethodNotAllowed,
    NoSuchRecord,
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
LIMIT_SENTENCE = (
    "Monetate allows one record lookup per second for everyone using this API together, "
    "for manual spot checks only"
)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[Any]:
    """A JSON error ``{"message", "error"}`` with the security headers."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"message": message, "error": code},
        headers={**SECURITY_HEADERS, **(headers or {})},
    )


def retry_after_seconds(seconds: float | None) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    if seconds is None or not math.isfinite(seconds):
        return 1
    return max(1, math.ceil(seconds))


def register_error_handlers(app: APIGatewayRestResolver, sink: MetricsSink, log: Any) -> None:
    """The one place where exceptions become responses (most specific class wins, by MRO)."""

    def invalid(exc: InvalidRequest) -> Response[Any]:
        return error_response(400, exc.code, exc.message)

    def slow_down(code: str, reason: str, retry_after: float | None) -> Response[Any]:
        sink.count("SpotChecksThrottled")
        seconds = retry_after_seconds(retry_after)
        message = f"slow down: {reason}. Try again in {seconds} s."
        return error_response(429, code, message, headers={"Retry-After": str(seconds)})

    def paced(exc: PaceExceeded) -> Response[Any]:
        log.info("spot check refused by the pacer", extra={"retry_after": exc.retry_after})
        reason = f"{LIMIT_SENTENCE}, and another lookup holds the next slot"
        return slow_down("too_many_lookups", reason, exc.retry_after)

    def rate_limited(exc: RateLimitedError) -> Response[Any]:
        log.warning("Monetate answered 429 to a spot check", extra={"retry_after": exc.retry_after})
        reason = f"Monetate answered 429 Too Many Requests ({LIMIT_SENTENCE})"
        return slow_down("rate_limited", reason, exc.retry_after)

    def not_found(exc: NotFoundError | NoSuchRecord) -> Response[Any]:
        schema, record_id = current_lookup(app)
        return error_response(
            404,
            "not_found",
            f"no record with id {record_id!r} in schema {schema!r}; records posted in the last few "
            "minutes may not be visible yet, and a schema that does not exist looks the same",
        )

    def not_allowed(exc: MethodNotAllowed) -> Response[Any]:
        return error_response(
            405,
            "method_not_allowed",
            f"{exc.method} is not allowed here: this API answers only GET (GET / for the page, "
            "GET /records/{schema}/{id} for a record)",
            headers={"Allow": ALLOWED_METHODS},
        )

    def bad_request(exc: BadRequestError) -> Response[Any]:
        summary = "; ".join(_short(e) for e in exc.meta_errors[:3]) or "no details given"
        return error_response(400, "monetate_bad_request", f"Monetate refused the lookup (400): {summary}")

    def key_revoked(exc: KeyRevokedError) -> Response[Any]:
        sink.count("KeyRevoked")
        log.error("Monetate API key revoked", extra={"error": str(exc)})
        return error_response(
            502,
            "key_revoked",
            "Monetate refused the function's API key: it was revoked (403). An administrator must "
            "issue a new key for the API user and update the secret; nothing was looked up.",
        )

    def auth_failed(exc: AuthenticationError) -> Response[Any]:
        log.error("Monetate refused the function's credentials", extra={"error": str(exc)})
        return error_response(
            502,
            "upstream_auth_failed",
            "Monetate did not accept the function's credentials (401); check the API user and its "
            "key in the secret, then try again.",
        )

    def upstream_error(exc: MonetateApiError) -> Response[Any]:
        log.warning("spot check failed upstream", extra={"error": str(exc), "status": exc.status})
        return error_response(
            502,
            "upstream_error",
            f"the lookup failed upstream: {exc.message}. It was not retried; try again in a few seconds.",
        )

    def unavailable(exc: requests.RequestException) -> Response[Any]:
        log.warning("spot check could not reach Monetate", extra={"error": type(exc).__name__})
        return error_response(
            502,
            "upstream_unavailable",
            f"Monetate's Data API could not be reached ({type(exc).__name__}); try again in a few seconds.",
        )

    def misconfigured(exc: ConfigurationError) -> Response[Any]:
        log.error("function misconfigured", extra={"error": str(exc)})
        return error_response(500, "misconfigured", f"the function is misconfigured: {exc}")

    def internal(exc: Exception) -> Response[Any]:
        log.exception("unexpected error in ValidateRecord")
        return error_response(500, "internal_error", "internal error; the details are in the function's log")

    handlers: list[tuple[type[Exception], Callable[[Any], Response[Any]]]] = [
        (InvalidRequest, invalid),
        (PaceExceeded, paced),
        (RateLimitedError, rate_limited),
        (NotFoundError, not_found),
        (NoSuchRecord, not_found),
        (MethodNotAllowed, not_allowed),
        (BadRequestError, bad_request),
        (KeyRevokedError, key_revoked),
        (AuthenticationError, auth_failed),
        (MonetateApiError, upstream_error),
        (requests.RequestException, unavailable),
        (ConfigurationError, misconfigured),
        (Exception, internal),
    ]
    for exc_class, handle in handlers:
        app.exception_handler(exc_class)(handle)


def current_lookup(app: APIGatewayRestResolver) -> tuple[str, str]:
    event = app.current_event
    params = event.path_parameters or {}
    match = RECORDS_PATH.fullmatch(event.path or "")
    schema = params.get("schema") or (match.group(1) if match else "?")
    record_id = params.get("id") or (match.group(2) if match else "?")
    return schema, record_id


def _short(error: Any) -> str:
    text = "; ".join(f"{k}: {v}" for k, v in error.items()) if isinstance(error, dict) else str(error)
    return text if len(text) <= 200 else text[:197] + "..."
