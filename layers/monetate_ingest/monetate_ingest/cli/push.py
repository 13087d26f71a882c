"""``push FILE --schema NAME``: the IngestFile pipeline on a local file, with a progress bar (tqdm).

:class:`~monetate_ingest.ingest.job.FileIngest` runs unchanged over local stand-ins of S3 (the
file, its report and rejects next to it, scratch parts in a temporary directory) and an in-memory
checkpoint store. Rows Monetate keeps failing on are parked on ``RECORDS_QUEUE_URL`` when it is set
(PostRecords delivers them later), otherwise in ``FILE.parked.jsonl`` as SQS envelopes. Change-only
sync follows ``SYNC_MODE`` (or ``--sync``) against the real ``SYNC_LEDGER_TABLE``, as IngestFile does.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from monetate_ingest.aws.clients import LazyClient
from monetate_ingest.cli.common import CliError, Context
from monetate_ingest.cli.local_io import FileQueue, LocalFileRef, LocalS3, local_etag
from monetate_ingest.cli.progress import ProgressBar, Sample, Ticker, stream_is_tty
from monetate_ingest.cli.summary import describe
from monetate_ingest.errors import SettingsError
from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers import detect_format
from monetate_ingest.ingest.checkpoints import MemoryCheckpointStore
from monetate_ingest.ingest.job import FileIngest, IngestDeps
from monetate_ingest.ingest.report import Report
from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.monetate.schema import SchemaCache
from monetate_ingest.settings import IngestSettings, SyncMode
from monetate_ingest.sync.factory import SyncSource, private_key_of, sync_from_settings


def run(ctx: Context) -> int:
    args = ctx.args
    path = Path(args.file).expanduser()
    if not path.exists():
        raise CliError(f"no such file: {args.file}")
    if not path.is_file():
        raise CliError(f"not a regular file: {args.file}")
    try:
        detect_format(path.name)
    except FileFormatError as exc:
        raise CliError(str(exc)) from None
    settings = push_settings(ctx)
    if args.batch_rows is not None:
        settings = dataclasses.replace(
            settings, rows=dataclasses.replace(settings.rows, batch_max_rows=args.batch_rows)
        )
    if args.concurrency is not None:
        settings = dataclasses.replace(settings, post_concurrency=args.concurrency)
    path = path.resolve()
    stat = path.stat()
    ref = LocalFileRef(
        bucket="local",
        key=str(path),
        etag=local_etag(stat),
        size=stat.st_size,
        schema=args.schema,
        name=path.name,
        dry_run=bool(args.dry_run),
    )
    parked = Path(ref.parked_path)
    for stale in (Path(ref.rejects_key), parked):  # outputs of an earlier push would mislead
        stale.unlink(missing_ok=True)
    sqs: object
    if settings.records_queue_url:
        sqs = LazyClient(lambda: ctx.aws("sqs"))
        parked_to = f"the records queue {settings.records_queue_url}"
    else:
        sqs = FileQueue(parked)
        settings = dataclasses.replace(settings, records_queue_url=parked.as_uri())
        parked_to = str(parked)
    client = ctx.client(settings)
    sync = sync_source(ctx, settings, client)

    with tempfile.TemporaryDirectory(prefix="monetate-ingest-push-") as scratch:
        s3 = LocalS3(Path(scratch))
        deps = IngestDeps(
            s3=s3,
            sqs=sqs,
            client=client,
            schemas=SchemaCache(client.get_schema),
            checkpoints=MemoryCheckpointStore(),
            sync=sync,
        )
        job = FileIngest(deps, settings, ref)
        bar = ProgressBar(
            ctx.err,
            stat.st_size,
            enabled=not args.quiet and stream_is_tty(ctx.err),
            dry_run=ref.dry_run,
            label=path.name,
        )

        def sample() -> Sample:
            reader = s3.readers.get(ref.key)
            report: Report | None = getattr(job, "report", None)
            c = report.counts if report is not None else None
            return Sample(
                bytes_read=reader.bytes_read if reader is not None else 0,
                read=c.read if c else 0,
                posted=c.posted if c else 0,
                rejected=c.rejected if c else 0,
                parked=c.parked if c else 0,
                unchanged=int(getattr(c, "unchanged", 0)) if c else 0,
            )

        revoked: KeyRevokedError | None = None
        try:
            with Ticker(bar, sample):
                report = job.run()  # the report is written whatever failed; show it, then fail
                if job.failure is not None and isinstance(job.failure.error, KeyRevokedError):
                    revoked = job.failure.error
        finally:
            _close(sync)

    ctx.print(f"file:        {path}")
    for line in describe(report.to_dict()):
        if not line.startswith("source:"):
            ctx.print(line)
    ctx.print(f"report:      {ref.report_key}")
    if report.counts.parked:
        ctx.print(f"parked:      {report.counts.parked:,} rows on {parked_to}")
    if revoked is not None:
        raise revoked
    return 0 if report.status == "complete" else 2


def push_settings(ctx: Context) -> IngestSettings:
    """The settings, with ``--sync`` overriding SYNC_MODE (``changes`` needs SYNC_LEDGER_TABLE)."""
    if ctx.args.sync is None:
        return ctx.settings()
    mode: SyncMode = "changes" if ctx.args.sync == "changes" else "all"
    settings = ctx.settings({"SYNC_MODE": "all"})  # the environment's mode does not count here
    try:
        sync = dataclasses.replace(settings.sync, mode=mode)
    except SettingsError as exc:
        raise CliError(f"--sync {mode}: {exc}") from None
    return dataclasses.replace(settings, sync=sync)


def sync_source(ctx: Context, settings: IngestSettings, client: object) -> SyncSource:
    """The push's change-only sync: the ledger table through this session's DynamoDB client, the
    hashing key from the Monetate client's secret (read only if a session is active)."""
    dynamodb = LazyClient(lambda: ctx.aws("dynamodb"))
    return sync_from_settings(settings.sync, settings.monetate, private_key_of(client), client=dynamodb)


def _close(sync: SyncSource) -> None:
    close = getattr(sync.ledger, "close", None)
    if callable(close):
        close()
