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
from monetate_ingest.ingest.events import Continuation, read_event
from monetate_ingest.ingest.exceptions import (
    ContinuationError,
    EventError,
    StateStoreError,
    describe_aws_error,
)
from monetate_ingest.ingest.job import FileIngest, IngestDeps
from monetate_ingest.ingest.report import Report
from monetate_ingest.ingest.s3_layout import FileRef, Ignored
from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.observability import NAMESPACE, SERVICE, logger
from monetate_ingest.once import Once
from monetate_ingest.settings import IngestSettings

MAX_EMF_VALUES = 100
#: How long a duplicate S3 event for the same bucket/key/ETag is answered from the record.
IDEMPOTENCY_SECONDS = 24 * 3600


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
    from monetate_ingest.sync.factory import private_key_of, sync_from_settings

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
        sync=sync_from_settings(settings.sync, settings.monetate, private_key_of(client), client=dynamodb),
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
        try:
            request = read_event(event)
        except EventError as exc:
            logger.error("event ignored: not an S3 notification", extra={"reason": str(exc)})
            return {"files": [], "ignored": str(exc)}
        rt = runtime.get()
        if isinstance(request, Continuation):
            logger.append_keys(file=request.ref.identity)
            return {"files": [_run_file(rt, request.ref, context)]}
        results: list[dict[str, Any]] = []
        for item in request:
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
    """Process ``ref`` unless the same bucket/key/ETag was (or is being) processed already.

    A failure whose rule says ``forget`` leaves no idempotency record (a later delivery runs the
    file again); one that says ``raise`` re-raises after the report is written.
    """
    if rt.idempotency is None:
        return _run_file(rt, ref, context)
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
    )

    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_SECONDS)
    config.register_lambda_context(context)
    ran: list[FileIngest] = []

    @idempotent_function(  # type: ignore[untyped-decorator]
        data_keyword_argument="file", persistence_store=rt.idempotency, config=config
    )
    def process(file: dict[str, Any]) -> dict[str, Any]:
        job = _new_job(rt, ref, context)
        ran.append(job)
        summary = _run_file(rt, ref, context, job)
        if job.failure is not None and job.failure.rule.forget:
            raise _Forget(summary)
        return summary

    try:
        result: dict[str, Any] = process(file={"bucket": ref.bucket, "key": ref.key, "etag": ref.etag})
        return result
    except _Forget as forgotten:
        return forgotten.summary
    except IdempotencyAlreadyInProgressError:
        logger.info("another invocation is processing this file; duplicate event skipped")
        return {"key": ref.key, "duplicate": True}
    except IdempotencyPersistenceLayerError as exc:
        error = StateStoreError(
            f"the idempotency record in DynamoDB table {rt.settings.idempotency_table!r} "
            f"(IDEMPOTENCY_TABLE) could not be read or written: {describe_aws_error(exc.__cause__ or exc)}",
            table=rt.settings.idempotency_table,
        )
        if not ran:  # failed before the file started: its report says why
            job = _new_job(rt, ref, context)
            job.fail(error)
            _after(rt, ref, job)
        raise error from exc


class _Forget(Exception):
    """Internal: raised through Powertools idempotency so it keeps no record of a failed file."""

    def __init__(self, summary: dict[str, Any]) -> None:
        super().__init__(summary.get("status"))
        self.summary = summary


def _new_job(rt: IngestRuntime, ref: FileRef, context: Any) -> FileIngest:
    remaining: Callable[[], int] | None = getattr(context, "get_remaining_time_in_millis", None)
    return FileIngest(rt.deps, rt.settings, ref, remaining_ms=remaining)


def _run_file(rt: IngestRuntime, ref: FileRef, context: Any, job: FileIngest | None = None) -> dict[str, Any]:
    """Run the file, continue it if it stopped early, then raise or return as its failure's rule says."""
    job = job or _new_job(rt, ref, context)
    try:
        job.run()
    except Exception:  # the report could not be written (it was logged): Lambda retries the file
        _after(rt, ref, job)
        raise
    if job.continued and job.failure is None:
        try:
            invocation = job.cp.invocation
            rt.continuer_for(context)({"continuation": {"file": ref.to_payload(), "invocation": invocation}})
            logger.info("continuing the file in a fresh invocation", extra={"rows_done": job.cp.rows_done})
        except Exception as exc:
            job.fail(_continuation_error(exc))
    _after(rt, ref, job)
    if job.failure is not None and job.failure.rule.raises:
        raise job.failure.error
    return _summary(ref, job.report)


def _continuation_error(exc: Exception) -> ContinuationError:
    return ContinuationError(
        f"could not invoke the function to continue the file: {describe_aws_error(exc)}", call="lambda:Invoke"
    )


def _after(rt: IngestRuntime, ref: FileRef, job: FileIngest) -> None:
    """Metrics, the completion event and the log line of the invocation's end."""
    report = job.report
    _emit(ref, job)
    if isinstance(job.failure and job.failure.error, KeyRevokedError):
        revoked = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
        revoked.add_metric(name="KeyRevoked", unit=MetricUnit.Count, value=1)
        revoked.flush_metrics()
    if rt.publish and report.status != "partial":
        rt.publish(ref, report)
    logger.info(
        "file processed",
        extra={
            "status": report.status,
            "counts": report.counts.__dict__,
            "report": ref.report_key,
            "errors": [e.get("code") for e in report.errors],
        },
    )


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
        ("RowsUnchanged", c.unchanged - before.unchanged),
        ("BatchesParked", report.batches.get("parked", 0) - before_parked),
        ("BatchesPosted", len(job.post_ms)),
    ):
        m.add_metric(name=name, unit=MetricUnit.Count, value=value)
    # EMF takes up to 100 values per metric and line: an even sample of the batches' latencies.
    for ms in _even_sample(job.post_ms):
        m.add_metric(name="PostLatency", unit=MetricUnit.Milliseconds, value=round(ms, 1))
    for (metric, unit), values in job.sync_metrics.values.items():
        if unit == MetricUnit.Count:
            m.add_metric(name=metric, unit=unit, value=sum(values))
        else:
            for sample in _even_sample(values):
                m.add_metric(name=metric, unit=unit, value=round(sample, 1))
    if report.status != "partial":
        name = "FilesFailed" if report.status == "failed" else "FilesCompleted"
        m.add_metric(name=name, unit=MetricUnit.Count, value=1)
    m.flush_metrics()


def _even_sample(values: list[float]) -> list[float]:
    """At most ``MAX_EMF_VALUES`` values, evenly spread over ``values``."""
    step = max(1, -(-len(values) // MAX_EMF_VALUES))
    return values[::step]


def _summary(ref: FileRef, report: Report) -> dict[str, Any]:
    return {
        "key": ref.key,
        "status": report.status,
        "counts": report.counts.__dict__,
        "sync": report.sync,
        "report": f"s3://{ref.bucket}/{ref.report_key}",
    }
