"""The IngestFile function's logic: S3 events and continuations in, reports out.

``make_handler(deps_factory)`` returns the Lambda handler; ``functions/ingest_file/app.py`` calls
it with the AWS defaults, the local stack and the tests with their own dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from monetate_ingest.ingest.checkpoints import DynamoCheckpointStore
from monetate_ingest.ingest.continuation import Continuer, LambdaContinuer
from monetate_ingest.ingest.job import FileIngest, IngestDeps
from monetate_ingest.ingest.report import Report
from monetate_ingest.ingest.s3_layout import FileRef, Ignored, files_in_event
from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.observability import NAMESPACE, SERVICE, logger
from monetate_ingest.once import Once
from monetate_ingest.settings import IngestSettings

MAX_EMF_VALUES = 100
#: How long a duplicate S3 event for the same bucket/key/ETag is answered from the record.
IDEMPOTENCY_SECONDS = 24 * 3600


class _FileFailed(Exception):
    """Internal: a file ended ``failed``; raised so Powertools idempotency forgets it (retryable)."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.status)
        self.report = report


@dataclass
class IngestRuntime:
    """Everything an invocation needs, built once per container."""

    settings: IngestSettings
    deps: IngestDeps
    continuer_for: Callable[[Any], Continuer]
    publish: Callable[[FileRef, Report], None] | None = None
    idempotency: Any = None  # DynamoDBPersistenceLayer, or None to skip (tests of one file)


def default_runtime() -> IngestRuntime:
    """The AWS wiring: boto3 clients, the shared Monetate client, DynamoDB for state."""
    import boto3
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from monetate_ingest.aws.clients import LazyClient
    from monetate_ingest.ingest.completion_events import EventBridgePublisher
    from monetate_ingest.monetate.factory import shared_client
    from monetate_ingest.monetate.schema import SchemaCache

    settings = IngestSettings.for_function()
    client = shared_client(settings.monetate, pool_size=max(16, 2 * settings.post_concurrency))
    table = str(settings.idempotency_table)
    # Every client from boto3's default session: its service models and endpoint data load once.
    dynamodb = boto3.client("dynamodb")
    deps = IngestDeps(
        s3=boto3.client("s3"),
        sqs=LazyClient("sqs"),  # only parking needs it
        client=client,
        schemas=SchemaCache(client.get_schema),
        checkpoints=DynamoCheckpointStore(table, dynamodb),
    )
    return IngestRuntime(
        settings=settings,
        deps=deps,
        continuer_for=lambda context: LambdaContinuer(context.invoked_function_arn),
        publish=EventBridgePublisher(settings.event_bus_name or "default"),
        idempotency=DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb),
    )


def make_handler(runtime_factory: Callable[[], IngestRuntime] = default_runtime) -> Callable[..., Any]:
    """The Lambda handler; the runtime is built on the first invocation (imports stay cheap)."""
    runtime = Once(runtime_factory)

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        rt = runtime.get()
        if "continuation" in event:
            ref = FileRef.from_payload(event["continuation"]["file"])
            logger.append_keys(file=ref.identity)
            report = _run_file(rt, ref, context)
            return {"files": [_summary(ref, report)]}
        results: list[dict[str, Any]] = []
        for item in files_in_event(event):
            if isinstance(item, Ignored):
                logger.info(
                    "ignored S3 object", extra={"bucket": item.bucket, "key": item.key, "reason": item.reason}
                )
                results.append({"key": item.key, "ignored": item.reason})
                continue
            logger.append_keys(file=item.identity)
            results.append(_run_once(rt, item, context))
        return {"files": results}

    return handler


def _run_once(rt: IngestRuntime, ref: FileRef, context: Any) -> dict[str, Any]:
    """Process ``ref`` unless the same bucket/key/ETag was (or is being) processed already."""
    if rt.idempotency is None:
        return _summary(ref, _run_file(rt, ref, context))
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_SECONDS)
    config.register_lambda_context(context)

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="file", persistence_store=rt.idempotency, config=config
    )
    def process(file: dict[str, Any]) -> dict[str, Any]:
        report = _run_file(rt, ref, context)
        if report.status == "failed":
            raise _FileFailed(report)
        return _summary(ref, report)

    try:
        result: dict[str, Any] = process(file={"bucket": ref.bucket, "key": ref.key, "etag": ref.etag})
        return result
    except _FileFailed as failed:
        return _summary(ref, failed.report)
    except IdempotencyAlreadyInProgressError:
        logger.info("another invocation is processing this file; duplicate event skipped")
        return {"key": ref.key, "duplicate": True}


def _run_file(rt: IngestRuntime, ref: FileRef, context: Any) -> Report:
    remaining: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
    job = FileIngest(rt.deps, rt.settings, ref, remaining_ms=remaining)
    try:
        report = job.run()
    except KeyRevokedError:
        _emit(ref, job)
        revoked = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        revoked.add_metric(name="KeyRevoked", unit=MetricUnit.Count, value=1)
        revoked.flush_metrics()
        if rt.publish:
            rt.publish(ref, job.report)
        logger.error(
            "Monetate refused the API key (403); file stopped", extra={"counts": job.report.counts.__dict__}
        )
        raise
    if job.continued:
        invocation = job.cp.invocation
        rt.continuer_for(context)({"continuation": {"file": ref.to_payload(), "invocation": invocation}})
        logger.info("continuing the file in a fresh invocation", extra={"rows_done": job.cp.rows_done})
    _emit(ref, job)
    if rt.publish and report.status != "partial":
        rt.publish(ref, report)
    logger.info(
        "file processed",
        extra={"status": report.status, "counts": report.counts.__dict__, "report": ref.report_key},
    )
    return report


def _emit(ref: FileRef, job: FileIngest) -> None:
    """Per-schema metrics of this invocation's share of the file (EMF log line)."""
    report, before, before_parked = job.report, job.counts_before, job.parked_before
    m = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    m.add_dimension(name="schema", value=ref.schema)
    c = report.counts
    for name, value in (
        ("RowsRead", c.read - before.read),
        ("RowsPosted", c.posted - before.posted),
        ("RowsRejected", c.rejected - before.rejected),
        ("RowsParked", c.parked - before.parked),
        ("BatchesParked", report.batches.get("parked", 0) - before_parked),
        ("BatchesPosted", len(job.post_ms)),
    ):
        m.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # EMF takes up to 100 values per metric and line: an even sample of the batches' latencies.
    step = max(1, -(-len(job.post_ms) // MAX_EMF_VALUES))
    for ms in job.post_ms[::step]:
        m.add_metric(name="PostLatency", unit=MetricUnit.Milliseconds, value=round(ms, 1))
    if report.status != "partial":
        name = "FilesFailed" if report.status == "failed" else "FilesCompleted"
        m.add_metric(name=name, unit=MetricUnit.Count, value=1)
    m.flush_metrics()


def _summary(ref: FileRef, report: Report) -> dict[str, Any]:
    return {
        "key": ref.key,
        "status": report.status,
        "counts": report.counts.__dict__,
        "report": f"s3://{ref.bucket}/{ref.report_key}",
    }
