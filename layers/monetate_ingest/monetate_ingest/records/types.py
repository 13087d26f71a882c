"""PostRecords' dependencies and results: what it talks to (``PostRecordsDeps`` and the protocols
of its parts) and what became of each message of a batch (``Outcome``, ``BatchOutcome``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from monetate_ingest.observability import metrics
from monetate_ingest.records.dead_letters import DeadLetterSink
from monetate_ingest.records.deadline import PostLatencies
from monetate_ingest.records.idempotency import Claims
from monetate_ingest.settings import RowSettings
from monetate_ingest.sync.factory import SyncSource, sync_off

if TYPE_CHECKING:
    from monetate_ingest.monetate.schema import SchemaSpec


class MonetateApi(Protocol):
    """What PostRecords needs of :class:`MonetateClient`."""

    def post_body(self, schema: str, body: bytes, *, deadline: float | None = None) -> Any: ...


class SchemaSource(Protocol):
    """What PostRecords needs of :class:`SchemaCache`: a schema, and a fresh read of one."""

    def get(self, name: str) -> SchemaSpec: ...
    def refresh(self, name: str) -> SchemaSpec: ...


class ReceiveLimits(Protocol):
    """The ``maxReceiveCount`` of the queue a batch came from (None: unknown)."""

    def for_queue(self, queue_arn: str) -> int | None: ...


class RowCoercer(Protocol):
    """Coerces one message's row against its schema (``RowError`` for a bad row)."""

    def coerce(self, raw: dict[str, Any], /) -> dict[str, Any]: ...


def compile_row_coercer(spec: SchemaSpec, rows: RowSettings) -> RowCoercer:
    """The coercer of a schema for envelope rows (under ``UNKNOWN_COLUMNS=add`` PostRecords never
    changes the schema: it behaves as ``reject``)."""
    from monetate_ingest.formats.coercion import compile_coercer

    policy: Any = "reject" if rows.unknown_columns == "add" else rows.unknown_columns
    return compile_coercer(spec, None, unknown=policy, naive_tz=rows.naive_datetime_tz)


class MetricsSink(Protocol):
    def count(self, name: str, value: int, *, schema: str | None = None) -> None: ...


class PowertoolsMetricsSink:
    """Counts on the shared Powertools ``metrics`` (flushed by ``@metrics.log_metrics`` on the handler);
    per-schema counts go out at once on their own EMF line with a ``schema`` dimension."""

    def count(self, name: str, value: int, *, schema: str | None = None) -> None:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        if schema is None:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            return
        service = metrics.service or "monetate-ingest"
        per_schema = EphemeralMetrics(namespace=metrics.namespace, service=service)
        per_schema.add_dimension(name="schema", value=schema)
        per_schema.add_metric(name=name, unit=MetricUnit.Count, value=value)
        per_schema.flush_metrics()


@dataclass
class PostRecordsDeps:
    """Everything the handler talks to; build with :func:`build_deps` or fakes in tests."""

    client: MonetateApi
    schemas: SchemaSource
    dead_letters: DeadLetterSink
    claims: Claims
    #: Batch limits and coercion, as the function's settings give them.
    rows: RowSettings = field(default_factory=RowSettings)
    metrics: MetricsSink = field(default_factory=PowertoolsMetricsSink)
    #: Builds a schema's row coercer (the formats room's, unless a test brings its own).
    coercer: Callable[[SchemaSpec, RowSettings], RowCoercer] = compile_row_coercer
    #: The longest the invocation stops starting POSTs before its deadline (seconds); a ceiling:
    #: the margin actually kept follows the budget and the POSTs seen (:mod:`.deadline`).
    deadline_margin_ceiling: float = 10.0
    #: Durations of recent POSTs, kept for the container's life (the deadline arithmetic reads them).
    latencies: PostLatencies = field(default_factory=PostLatencies)
    #: Idempotency reads/writes and DLQ sends in flight at once (a round-trip each otherwise).
    idempotency_concurrency: int = 16
    #: Where the queue's ``maxReceiveCount`` comes from (None: messages SQS moves after it carry
    #: their reason only in the logs).
    receive_limits: ReceiveLimits | None = None
    #: Change-only sync (``SYNC_MODE``; :mod:`.change_sync`): off unless the handler builds one.
    sync: SyncSource = field(default_factory=sync_off)


class Outcome(StrEnum):
    """What became of one message (the value is what logs and metrics say)."""

    POSTED = "posted"  # every row stored: the message is deleted
    POSTED_PARTLY = "posted_partly"  # valid rows stored, the refused ones dead-lettered in an envelope
    DEAD_LETTERED = "dead_lettered"  # the original body in the DLQ with the reason
    DUPLICATE = "duplicate"  # the same content was posted before (or earlier in this batch)
    RETRIED = "retried"  # listed in batchItemFailures: SQS delivers it again


@dataclass
class BatchOutcome:
    """Per message id: why it must be retried (``failures``) or what became of it (``results``)."""

    failures: dict[str, str] = field(default_factory=dict)
    results: dict[str, Outcome] = field(default_factory=dict)
    posts: int = 0
    revoked: bool = False
