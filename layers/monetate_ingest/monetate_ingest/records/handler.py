"""The PostRecords Lambda handler: SQS envelopes → Monetate rows, partial batch failures, a DLQ that
explains.

:func:`make_handler` resolves its dependencies on the first invocation (:func:`build_deps`: the
shared Monetate client, the schema cache, the DLQ, the idempotency table, the sync ledger), hands
the whole SQS batch to :func:`process_messages` (which posts, dead-letters and records), then lets
Powertools' ``BatchProcessor`` walk the records: its record handler raises only for the messages
to retry, so the partial-batch response is Powertools'. A 403 (key revoked) stops every Monetate
call and fails every message of the batch (nothing deleted or dead-lettered).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from monetate_ingest.observability import logger, metrics
from monetate_ingest.once import Once
from monetate_ingest.records.deadline import Budget
from monetate_ingest.records.process import Incoming, process_messages
from monetate_ingest.records.types import (
    BatchOutcome,
    MetricsSink,
    MonetateApi,
    PostRecordsDeps,
    PowertoolsMetricsSink,
    SchemaSource,
)

if TYPE_CHECKING:
    from monetate_ingest.settings import RecordsSettings

__all__ = [
    "BatchOutcome",
    "Incoming",
    "MessageRetry",
    "MetricsSink",
    "MonetateApi",
    "PostRecordsDeps",
    "PowertoolsMetricsSink",
    "SchemaSource",
    "build_deps",
    "default_deps",
    "make_handler",
    "process_messages",
]

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class MessageRetry(Exception):
    """Raised by the record handler for a message SQS must deliver again."""

    def __init__(self, message_id: str, reason: str) -> None:
        super().__init__(f"message {message_id} will be retried: {reason}")


def build_deps(
    settings: RecordsSettings,
    *,
    client: Any = None,
    sqs_client: Any = None,
    dynamodb_client: Any = None,
    schema_max_age: float = 300,
) -> PostRecordsDeps:
    """The production wiring (lazily, on the first invocation): shared client, SQS DLQ, DynamoDB
    (idempotency and the ``SYNC_LEDGER_TABLE`` ledger on one client)."""
    import boto3

    from monetate_ingest.monetate.factory import shared_client
    from monetate_ingest.monetate.schema import SchemaCache
    from monetate_ingest.records.dead_letters import SqsDeadLetters
    from monetate_ingest.records.idempotency import dynamodb_claims
    from monetate_ingest.records.receive_limits import QueueReceiveLimits
    from monetate_ingest.sync.factory import private_key_of, sync_from_settings

    client = client if client is not None else shared_client(settings.monetate)
    sqs = sqs_client or boto3.client("sqs")
    dynamodb = dynamodb_client or boto3.client("dynamodb")
    return PostRecordsDeps(
        client=client,
        schemas=SchemaCache(client, max_age=schema_max_age),
        dead_letters=SqsDeadLetters(sqs, settings.records_dlq_url),
        claims=dynamodb_claims(settings.idempotency_table, boto3_client=dynamodb),
        rows=settings.rows,
        deadline_margin_ceiling=settings.deadline_margin_seconds,
        receive_limits=QueueReceiveLimits(sqs),
        sync=sync_from_settings(settings.sync, settings.monetate, private_key_of(client), client=dynamodb),
    )


def default_deps() -> PostRecordsDeps:
    from monetate_ingest.settings import RecordsSettings

    return build_deps(RecordsSettings.from_env())


def make_handler(deps: PostRecordsDeps | Callable[[], PostRecordsDeps] | None = None) -> Handler:
    """The Lambda handler for SQS events. ``deps`` (or a factory of them) is resolved on the first
    invocation, so importing the handler makes no network call."""
    resolved = Once(lambda: deps if isinstance(deps, PostRecordsDeps) else (deps or default_deps)())

    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

        d = resolved.get()
        d.claims.register_lambda_context(context)
        logger.append_keys(aws_request_id=getattr(context, "aws_request_id", None))
        budget = Budget(_remaining_seconds(context), ceiling=d.deadline_margin_ceiling, latencies=d.latencies)
        records = event.get("Records") or []
        messages = [Incoming(r["messageId"], r["body"], _receive_count(r), _sent_time(r)) for r in records]
        try:
            outcome = process_messages(messages, d, budget=budget, receive_limit=_receive_limit(d, records))
        except Exception:  # outside every message's own boundary: the batch returns to the queue
            logger.exception(
                "the batch failed as a whole; every message will be retried",
                extra={"message_ids": [m.message_id for m in messages]},
            )
            raise

        def record_handler(record: Any) -> str:
            reason = outcome.failures.get(record.message_id)
            if reason is not None:
                raise MessageRetry(record.message_id, reason)
            return str(outcome.results.get(record.message_id, "done"))

        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )

    return handler


def _remaining_seconds(context: Any) -> float | None:
    """The invocation's remaining time, or None without a Lambda context."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return None
    try:
        return int(getter()) / 1000
    except Exception:
        return None


def _receive_count(record: dict[str, Any]) -> int:
    try:
        return int((record.get("attributes") or {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


def _sent_time(record: dict[str, Any]) -> float | None:
    """The record's ``SentTimestamp`` in epoch seconds (None when absent or not a number)."""
    try:
        value = float((record.get("attributes") or {})["SentTimestamp"]) / 1000
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _receive_limit(deps: PostRecordsDeps, records: list[dict[str, Any]]) -> int | None:
    arn = records[0].get("eventSourceARN") if records else None
    if deps.receive_limits is None or not isinstance(arn, str):
        return None
    return deps.receive_limits.for_queue(arn)
