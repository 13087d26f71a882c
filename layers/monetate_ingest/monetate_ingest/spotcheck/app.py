"""ValidateRecord: the spot-check API and page behind API Gateway (Powertools ``APIGatewayRestResolver``).

Routes:

* ``GET /records/{schema}/{id}`` → ``200 {"schema", "id", "record"}`` after one paced
  ``GET /data/{schema}/?id=`` on Monetate's Data API (never retried);
* ``GET /`` → the self-contained spot-check page with a strict Content-Security-Policy.

Every failure is an exception; :func:`_register_error_handlers` is the one place that maps them to
responses ``{"message": ..., "error": <code>}``:

============================================  ======  ======================
exception                                     status  ``error``
============================================  ======  ======================
:class:`InvalidRequest` (bad schema or id)    400     ``invalid_schema_name`` / ``invalid_id``
unknown route                                 404     ``no_such_route``
:class:`~.errors.NotFoundError`               404     ``not_found``
:class:`~.pacing.PaceExceeded`                429     ``too_many_lookups`` (+ ``Retry-After``)
:class:`~.errors.RateLimitedError`            429     ``rate_limited`` (+ ``Retry-After``)
:class:`~.errors.BadRequestError`             400     ``monetate_bad_request``
:class:`~.errors.KeyRevokedError`             502     ``key_revoked`` (metric ``KeyRevoked``)
:class:`~.errors.AuthenticationError`         502     ``upstream_auth_failed``
Transient / unexpected / other API errors     502     ``upstream_error``
``requests`` timeouts, connection errors      502     ``upstream_unavailable``
:class:`~.errors.ConfigurationError`          500     ``misconfigured``
anything else                                 500     ``internal_error``
============================================  ======  ======================

Secrets: the caller's ``x-api-key`` header is never read or logged here (API Gateway checks it);
the resolver runs with ``debug=False`` so Powertools never prints the event, and the handler must
keep Logger's ``log_event`` off. Record ids may be personal data, so logs carry a short hash of the
id, never the id itself.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit

from monetate_ingest.errors import ConfigurationError
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    BadRequestError,
    KeyRevokedError,
    MonetateApiError,
    NotFoundError,
    RateLimitedError,
)
from monetate_ingest.observability import logger as default_logger
from monetate_ingest.observability import metrics as default_metrics
from monetate_ingest.spotcheck.pacing import PaceExceeded, Pacer
from monetate_ingest.spotcheck.page import spot_check_page

SCHEMA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
MAX_SCHEMA_NAME = 64
MAX_RECORD_ID = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_RECORDS_PATH = re.compile(r"/records/([^/]*)/(.*)", re.DOTALL)

#: The container's pacer. ValidateRecord runs with reserved concurrency 1, so this one object is
#: the retailer's whole one-lookup-per-second budget (see :mod:`monetate_ingest.spotcheck.pacing`).
PACER = Pacer()

_LIMIT_SENTENCE = (
    "Monetate allows one record lookup per second for everyone using this API together, "
    "for manual spot checks only"
)


# --- seams ---------------------------------------------------------------------------------


class RecordReader(Protocol):
    """What the validator needs from :class:`~.client.MonetateClient`."""

    def get_record(self, schema: str, record_id: str) -> dict[str, Any]: ...


class MetricsSink(Protocol):
    """What the validator needs from Powertools ``Metrics``."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


@dataclass(frozen=True)
class Upstream:
    """A ready reader (client built, token in hand) and how long a caller may wait for a slot."""

    reader: RecordReader
    max_wait: float


def default_upstream() -> Upstream:
    """Settings from the environment → the container's shared client, with its token minted.

    Everything slow (reading the secret, minting the token) happens here, *before* the pacer hands
    out a slot, so the slot is the send time. Raises :class:`~.errors.ConfigurationError` on a bad
    deployment (mapped to 500).
    """
    from monetate_ingest.monetate.factory import shared_client
    from monetate_ingest.settings import SpotcheckSettings

    settings = SpotcheckSettings.from_env()
    client = shared_client(settings.monetate)
    if client.tokens is not None:
        client.tokens.token()
    return Upstream(reader=client, max_wait=settings.validator_max_wait)


class LockedMetrics:
    """Serialises ``add_metric`` and ``flush`` on a shared Powertools ``Metrics``.

    A Lambda container runs one invocation at a time, but the local front and the tests run the
    handler from several threads at once; Powertools' metric set is a plain dict.
    """

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        with self._lock:
            self._metrics.add_metric(name=name, unit=unit, value=value)

    def flush(self) -> None:
        """Publish what was added (EMF on stdout); nothing, and no warning, when nothing was."""
        with self._lock:
            if getattr(self._metrics, "metric_set", None):
                self._metrics.flush_metrics()


#: The package metrics wrapped for thread safety; the handler flushes it after each invocation.
METRICS = LockedMetrics(default_metrics)


# --- request errors ------------------------------------------------------------------------


class InvalidRequest(Exception):
    """The caller's schema name or id is malformed (400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def validate_schema_name(schema: str) -> str:
    if not schema:
        raise InvalidRequest("invalid_schema_name", "the schema name is empty")
    if len(schema) > MAX_SCHEMA_NAME:
        raise InvalidRequest(
            "invalid_schema_name", f"the schema name is longer than {MAX_SCHEMA_NAME} characters"
        )
    if not SCHEMA_NAME.fullmatch(schema):
        raise InvalidRequest(
            "invalid_schema_name",
            "the schema name must start with a letter and contain only letters, digits and underscores",
        )
    return schema


def validate_record_id(record_id: str) -> str:
    if not record_id:
        raise InvalidRequest("invalid_id", "the record id is empty")
    if len(record_id) > MAX_RECORD_ID:
        raise InvalidRequest("invalid_id", f"the record id is longer than {MAX_RECORD_ID} characters")
    if _CONTROL.search(record_id):
        raise InvalidRequest("invalid_id", "the record id contains control characters")
    return record_id


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


# --- responses -----------------------------------------------------------------------------


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body={"message": message, "error": code},
        headers={**_SECURITY_HEADERS, **(headers or {})},
    )


def _retry_after(seconds: float | None) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    if seconds is None or not math.isfinite(seconds):
        return 1
    return max(1, math.ceil(seconds))


def _id_hash(record_id: str) -> str:
    return hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:12]


# --- the app -------------------------------------------------------------------------------


def create_app(
    upstream: Callable[[], Upstream] = default_upstream,
    *,
    pacer: Pacer | None = None,
    metrics: MetricsSink | None = None,
    logger: Any = None,
    clock: Callable[[], float] = time.monotonic,
) -> APIGatewayRestResolver:
    """Build the resolver. Nothing here touches the network; ``upstream`` is called per lookup.

    ``pacer`` defaults to the module's :data:`PACER` (the container-wide budget), ``metrics`` to
    the package's Powertools metrics (namespace ``MonetateIngest``), ``logger`` to its Logger.
    """
    the_pacer = PACER if pacer is None else pacer
    sink: MetricsSink = METRICS if metrics is None else metrics
    log = default_logger if logger is None else logger
    app = APIGatewayRestResolver(debug=False)

    def lookup(schema: str, record_id: str) -> Response[Any]:
        validate_schema_name(schema)
        validate_record_id(record_id)
        sink.add_metric("SpotChecks", MetricUnit.Count, 1)
        ready = upstream()
        the_pacer.acquire(ready.max_wait)
        started = clock()
        record = ready.reader.get_record(schema, record_id)
        log.info(
            "spot check",
            extra={
                "schema": schema,
                "id_sha256": _id_hash(record_id),
                "outcome": "found",
                "ms": round((clock() - started) * 1000, 1),
                **_caller(app),
            },
        )
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body={"schema": schema, "id": record_id, "record": record},
            headers=dict(_SECURITY_HEADERS),
        )

    @app.get("/")
    def page() -> Response[str]:
        served = spot_check_page()
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=served.html,
            headers={"Content-Security-Policy": served.csp, **_SECURITY_HEADERS},
        )

    @app.get("/records/<schema>/<record_id>")
    def get_record(schema: str, record_id: str) -> Response[Any]:
        params = app.current_event.path_parameters or {}
        return lookup(params.get("schema", schema), params.get("id", record_id))

    @app.not_found
    def unmatched(_: Exception) -> Response[Any]:
        # Powertools' route pattern refuses some characters an id may hold ("/", quotes, control
        # characters…): such requests still get validated and answered like the route.
        event = app.current_event
        match = _RECORDS_PATH.fullmatch(event.path or "")
        if event.http_method.upper() == "GET" and match:
            params = event.path_parameters or {}
            return lookup(params.get("schema", match.group(1)), params.get("id", match.group(2)))
        return _error(404, "no_such_route", "no such resource: use GET /records/{schema}/{id} or GET /")

    _register_error_handlers(app, sink, log)
    return app


def make_handler(
    upstream: Callable[[], Upstream] = default_upstream,
    *,
    pacer: Pacer | None = None,
    metrics: LockedMetrics | None = None,
    logger: Any = None,
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler ``(event, context) -> proxy response``; the resolver is built on first call.

    Invocations run one at a time (see below). The resolver is wrapped with Logger's Lambda
    context (``log_event`` forced off whatever ``POWERTOOLS_LOGGER_LOG_EVENT`` says: the event holds
    the caller's API key), and the metrics are published after every invocation.
    """
    from aws_lambda_powertools.logging import correlation_paths

    log = default_logger if logger is None else logger
    sink = METRICS if metrics is None else metrics
    built: list[APIGatewayRestResolver] = []
    lock = threading.Lock()
    # Powertools keeps the current event in class-level state: a resolver is not re-entrant across
    # threads. Lambda never runs two invocations in one container at once; the local front and the
    # tests do, and this lock makes them behave like one container (reserved concurrency 1).
    invocation = threading.Lock()

    def resolver() -> APIGatewayRestResolver:
        if not built:
            with lock:
                if not built:
                    built.append(create_app(upstream, pacer=pacer, metrics=sink, logger=log))
        return built[0]

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return resolver().resolve(event, context)
        finally:
            sink.flush()

    with_context: Callable[[dict[str, Any], Any], dict[str, Any]] = log.inject_lambda_context(
        handler, log_event=False, correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
    )

    def one_at_a_time(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with invocation:
            return with_context(event, context)

    return one_at_a_time


def _caller(app: APIGatewayRestResolver) -> dict[str, Any]:
    """Who asked (API key *id* and source IP, never the key), for the audit trail."""
    identity = app.current_event.request_context.identity
    return {"api_key_id": identity.api_key_id, "source_ip": identity.source_ip}


def _register_error_handlers(app: APIGatewayRestResolver, sink: MetricsSink, log: Any) -> None:
    """The one place where exceptions become responses (most specific class wins, by MRO)."""

    def invalid(exc: InvalidRequest) -> Response[Any]:
        return _error(400, exc.code, exc.message)

    def slow_down(code: str, reason: str, retry_after: float | None) -> Response[Any]:
        sink.add_metric("SpotChecksThrottled", MetricUnit.Count, 1)
        seconds = _retry_after(retry_after)
        message = f"slow down: {reason}. Try again in {seconds} s."
        return _error(429, code, message, headers={"Retry-After": str(seconds)})

    def paced(exc: PaceExceeded) -> Response[Any]:
        log.info("spot check refused by the pacer", extra={"retry_after": exc.retry_after})
        reason = f"{_LIMIT_SENTENCE}, and another lookup holds the next slot"
        return slow_down("too_many_lookups", reason, exc.retry_after)

    def rate_limited(exc: RateLimitedError) -> Response[Any]:
        log.warning("Monetate answered 429 to a spot check", extra={"retry_after": exc.retry_after})
        reason = f"Monetate answered 429 Too Many Requests ({_LIMIT_SENTENCE})"
        return slow_down("rate_limited", reason, exc.retry_after)

    def not_found(exc: NotFoundError) -> Response[Any]:
        schema, record_id = _current_lookup(app)
        return _error(
            404,
            "not_found",
            f"no record with id {record_id!r} in schema {schema!r}; records posted in the last few "
            "minutes may not be visible yet, and a schema that does not exist looks the same",
        )

    def bad_request(exc: BadRequestError) -> Response[Any]:
        summary = "; ".join(_short(e) for e in exc.meta_errors[:3]) or "no details given"
        return _error(400, "monetate_bad_request", f"Monetate refused the lookup (400): {summary}")

    def key_revoked(exc: KeyRevokedError) -> Response[Any]:
        sink.add_metric("KeyRevoked", MetricUnit.Count, 1)
        log.error("Monetate API key revoked", extra={"error": str(exc)})
        return _error(
            502,
            "key_revoked",
            "Monetate refused the function's API key: it was revoked (403). An administrator must "
            "issue a new key for the API user and update the secret; nothing was looked up.",
        )

    def auth_failed(exc: AuthenticationError) -> Response[Any]:
        log.error("Monetate refused the function's credentials", extra={"error": str(exc)})
        return _error(
            502,
            "upstream_auth_failed",
            "Monetate did not accept the function's credentials (401); check the API user and its "
            "key in the secret, then try again.",
        )

    def upstream_error(exc: MonetateApiError) -> Response[Any]:
        log.warning("spot check failed upstream", extra={"error": str(exc), "status": exc.status})
        return _error(
            502,
            "upstream_error",
            f"the lookup failed upstream: {exc.message}. It was not retried; try again in a few seconds.",
        )

    def unavailable(exc: requests.RequestException) -> Response[Any]:
        log.warning("spot check could not reach Monetate", extra={"error": type(exc).__name__})
        return _error(
            502,
            "upstream_unavailable",
            f"Monetate's Data API could not be reached ({type(exc).__name__}); try again in a few seconds.",
        )

    def misconfigured(exc: ConfigurationError) -> Response[Any]:
        log.error("function misconfigured", extra={"error": str(exc)})
        return _error(500, "misconfigured", f"the function is misconfigured: {exc}")

    def internal(exc: Exception) -> Response[Any]:
        log.exception("unexpected error in ValidateRecord")
        return _error(500, "internal_error", "internal error; the details are in the function's log")

    handlers: list[tuple[type[Exception], Callable[[Any], Response[Any]]]] = [
        (InvalidRequest, invalid),
        (PaceExceeded, paced),
        (RateLimitedError, rate_limited),
        (NotFoundError, not_found),
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


def _current_lookup(app: APIGatewayRestResolver) -> tuple[str, str]:
    event = app.current_event
    params = event.path_parameters or {}
    match = _RECORDS_PATH.fullmatch(event.path or "")
    schema = params.get("schema") or (match.group(1) if match else "?")
    record_id = params.get("id") or (match.group(2) if match else "?")
    return schema, record_id


def _short(error: Any) -> str:
    text = "; ".join(f"{k}: {v}" for k, v in error.items()) if isinstance(error, dict) else str(error)
    return text if len(text) <= 200 else text[:197] + "..."
