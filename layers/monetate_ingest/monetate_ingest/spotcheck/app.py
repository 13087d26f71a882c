"""ValidateRecord: the spot-check API and page behind API Gateway (Powertools ``APIGatewayRestResolver``).

Routes:

* ``GET /records/{schema}/{id}`` → ``200 {"schema", "id", "record"}`` after one paced
  ``GET /data/{schema}/?id=`` on Monetate's Data API (never retried). ``record`` is the stored
  record itself: the first row of Monetate's ``schema_rows``; when more than one row matched the
  id, ``"matched": <n>`` says how many. No row at all is a 404, as Monetate's own 404 is.
* ``GET /`` → the self-contained spot-check page with a strict Content-Security-Policy.
* any other method on those two → 405 with ``Allow: GET``.

Every failure is an exception; :mod:`monetate_ingest.spotcheck.responses` maps them to responses.

Secrets: the caller's ``x-api-key`` header is never read or logged here (API Gateway checks it);
the resolver runs with ``debug=False`` so Powertools never prints the event, and the handler must
keep Logger's ``log_event`` off. Record ids may be personal data, so logs carry a short hash of the
id, never the id itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.metrics import MetricUnit

from monetate_ingest.observability import MetricsSink
from monetate_ingest.observability import logger as default_logger
from monetate_ingest.observability import metrics as default_metrics
from monetate_ingest.once import Once
from monetate_ingest.spotcheck.pacing import Pacer
from monetate_ingest.spotcheck.page import spot_check_page
from monetate_ingest.spotcheck.responses import (
    SECURITY_HEADERS,
    error_response,
    register_error_handlers,
)
from monetate_ingest.spotcheck.validation import (
    RECORDS_PATH,
    MethodNotAllowed,
    NoSuchRecord,
    is_known_path,
    validate_record_id,
    validate_schema_name,
)

__all__ = ["PACER", "Upstream", "create_app", "make_handler", "spot_check_page"]

#: The container's pacer. ValidateRecord runs with reserved concurrency 1, so this one object is
#: the retailer's whole one-lookup-per-second budget (see :mod:`monetate_ingest.spotcheck.pacing`).
PACER = Pacer()


# --- seams ---------------------------------------------------------------------------------


class RecordReader(Protocol):
    """What the validator needs from :class:`~.client.MonetateClient`: the rows matching an id."""

    def get_record(self, schema: str, record_id: str) -> list[dict[str, Any]]: ...


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
    """Serialises counts and ``flush`` on a shared Powertools ``Metrics``.

    A Lambda container runs one invocation at a time, but the local front and the tests run the
    handler from several threads at once; Powertools' metric set is a plain dict.
    """

    def __init__(self, metrics: Any) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()

    def count(self, name: str, value: float = 1, *, schema: str | None = None) -> None:

        with self._lock:  # the validator's counts carry no schema dimension
            self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

    def flush(self) -> None:
        """Publish what was added (EMF on stdout); nothing, and no warning, when nothing was."""
        with self._lock:
            if getattr(self._metrics, "metric_set", None):
                self._metrics.flush_metrics()


#: The package metrics wrapped for thread safety; the handler flushes it after each invocation.
METRICS = LockedMetrics(default_metrics)


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
        sink.count("SpotChecks")
        ready = upstream()
        the_pacer.acquire(ready.max_wait)
        started = clock()
        rows = ready.reader.get_record(schema, record_id)
        log.info(
            "spot check",
            extra={
                "schema": schema,
                "id_sha256": _id_hash(record_id),
                "outcome": "found" if rows else "not_found",
                "matched": len(rows),
                "ms": round((clock() - started) * 1000, 1),
                **_caller(app),
            },
        )
        if not rows:
            raise NoSuchRecord(f"Monetate matched no row for the id in schema {schema!r}")
        body: dict[str, Any] = {"schema": schema, "id": record_id, "record": rows[0]}
        if len(rows) > 1:
            body["matched"] = len(rows)
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=body,
            headers=dict(SECURITY_HEADERS),
        )

    @app.get("/")
    def page() -> Response[str]:
        served = spot_check_page()
        return Response(
            status_code=200,
            content_type="text/html; charset=utf-8",
            body=served.html,
            headers={"Content-Security-Policy": served.csp, **SECURITY_HEADERS},
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
        path, method = event.path or "", event.http_method.upper()
        match = RECORDS_PATH.fullmatch(path)
        if method == "GET" and match:
            params = event.path_parameters or {}
            return lookup(params.get("schema", match.group(1)), params.get("id", match.group(2)))
        if is_known_path(path):
            raise MethodNotAllowed(method, path)
        message = "no such resource: use GET /records/{schema}/{id} or GET /"
        return error_response(404, "no_such_route", message)

    register_error_handlers(app, sink, log)
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
    # Powertools keeps the current event in class-level state: a resolver is not re-entrant across
    # threads. Lambda never runs two invocations in one container at once; the local front and the
    # tests do, and this lock makes them behave like one container (reserved concurrency 1).
    invocation = threading.Lock()

    resolver = Once(lambda: create_app(upstream, pacer=pacer, metrics=sink, logger=log))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return resolver.get().resolve(event, context)
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


def _id_hash(record_id: str) -> str:
    return hashlib.sha256(record_id.encode("utf-8")).hexdigest()[:12]
