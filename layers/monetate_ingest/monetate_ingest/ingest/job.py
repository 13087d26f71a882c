"""One file through the pipeline: S3 → rows → coercion → batches → Monetate, with a report.

:class:`FileIngest` orchestrates: it loads the checkpoint, opens the object
(:mod:`~monetate_ingest.ingest.source`), compiles the coercer (:mod:`~monetate_ingest.ingest.columns`),
cuts the rows into units (:mod:`~monetate_ingest.ingest.units`), lets the
:mod:`~monetate_ingest.ingest.scheduler` post them, counts each finished unit into the report, and
checkpoints. Every row ends posted, rejected (with its line and reason), parked, or skipped as
unchanged by change-only sync (:mod:`~monetate_ingest.ingest.change_sync`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.delivery.bisection import PartialDeliveryError
from monetate_ingest.errors import SettingsError
from monetate_ingest.formats.coercion import RowCoercer
from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers import RowSource, open_rows
from monetate_ingest.ingest.budget import Budget
from monetate_ingest.ingest.change_sync import FileSync, MetricSamples, group_limits
from monetate_ingest.ingest.checkpoints import Checkpoint, CheckpointStore
from monetate_ingest.ingest.columns import ColumnPolicy
from monetate_ingest.ingest.exceptions import StateStoreError
from monetate_ingest.ingest.failures import Failure, classify
from monetate_ingest.ingest.parking import park_rows, park_undelivered
from monetate_ingest.ingest.reading import items_of
from monetate_ingest.ingest.record_keys import KeyReader, key_field
from monetate_ingest.ingest.report import Counts, Report, utc_now
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.ingest.scheduler import Scheduler
from monetate_ingest.ingest.source import SourceObject
from monetate_ingest.ingest.state import FileState
from monetate_ingest.ingest.tally import count_unit
from monetate_ingest.ingest.units import Item, Unit, UnitOutcome, UnitReader
from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.monetate.names import check_schema_name
from monetate_ingest.monetate.schema import SchemaCache, SchemaSpec
from monetate_ingest.observability import logger
from monetate_ingest.settings import IngestSettings
from monetate_ingest.sync.factory import SyncSource, sync_off
from monetate_ingest.sync.modes import forced_full


@dataclass
class IngestDeps:
    """The I/O one file needs; the handler builds the AWS defaults, tests pass fakes."""

    s3: Any
    sqs: Any
    client: Any  # MonetateClient: post_body, add_fields
    schemas: SchemaCache
    checkpoints: CheckpointStore
    clock: Callable[[], float] = time.monotonic
    checkpoint_interval: float = 5.0
    #: Change-only sync (``SYNC_MODE``): off unless the handler or the CLI builds one.
    sync: SyncSource = field(default_factory=sync_off)


class FileIngest:
    """Runs one file (or its continuation) to a :class:`Report`."""

    def __init__(
        self,
        deps: IngestDeps,
        settings: IngestSettings,
        ref: FileRef,
        *,
        remaining_ms: Callable[[], int] | None = None,
    ) -> None:
        self.deps = deps
        self.settings = settings
        self.ref = ref
        #: The Lambda context's clock (None outside Lambda: no deadline).
        self.remaining_ms = remaining_ms
        self.source = SourceObject(deps.s3, ref)
        self.columns = ColumnPolicy(settings.rows, deps.client, deps.schemas, dry_run=ref.dry_run)
        self.state = FileState(deps.checkpoints, self.source)
        self.cp = Checkpoint()
        #: What ended the file, if something failed (the first failure decides the outcome).
        self.failure: Failure | None = None
        self.report = Report(
            source=ref.source(), schema=ref.schema, dry_run=ref.dry_run, timings={"started": utc_now()}
        )
        self.writer = self.source.rejects([])
        #: The counts and parked batches before this invocation (its metrics are the difference).
        self.counts_before = Counts()
        self.parked_before = 0
        self.continued = False
        #: Milliseconds per batch POST (with retries and bisection) in this invocation.
        self.post_ms: list[float] = []
        #: The change-only sync ledger's latencies and failures in this invocation.
        self.sync_metrics = MetricSamples()
        self._last_checkpoint = deps.clock()

    # -- orchestration ------------------------------------------------------------------------

    def run(self) -> Report:
        """Process the file from its checkpoint; always ends with the report written (see ``close``).

        Whatever fails is classified (:mod:`~monetate_ingest.ingest.failures`) into ``failure``:
        the report says ``failed`` with what, where and what to do; the caller decides from
        ``failure.rule`` whether to raise. Only a report that cannot be written raises here.
        """
        started = time.time()
        try:
            cp = self.state.load()
            self._resume(cp)
            if cp.finished:  # its report may not have been written: write it again
                logger.info("file already finished; nothing to do", extra={"file": self.ref.identity})
                self._write_report()
                return self.report
            self._begin(cp)
            self._ingest()
        except Exception as exc:  # the boundary that owns the file's outcome: every error ends here
            self._record(exc)
        self._close(started)
        return self.report

    def fail(self, exc: BaseException) -> Report:
        """End the file ``failed`` because of ``exc`` raised around the job (continuation, idempotency)."""
        self._record(exc)
        self._close(time.time())
        return self.report

    def _begin(self, cp: Checkpoint) -> None:
        report = self.report
        report.status, report.errors, report.errors_omitted = "partial", [], 0
        cp.invocation += 1
        report.invocations = cp.invocation
        self.writer = self.source.rejects(cp.reject_parts, cp.pending_rejects)
        self._last_checkpoint = self.deps.clock()

    def _record(self, exc: BaseException) -> None:
        """Classify ``exc`` into the report (the first failure decides the outcome)."""
        failure = classify(exc)
        self.failure = self.failure or failure
        if any(e["message"] == failure.message for e in self.report.errors):
            return  # the same failure met again while closing
        extra = dict(failure.where)
        if self.state.loaded:  # counts are of finished rows; the rest is read again on a retry
            extra["rows_finished"] = self.cp.rows_done
        self.report.fail(failure.code, failure.message, **extra)
        logger.error(
            "file failed",
            extra={"code": failure.code, "error": failure.message, "error_type": type(exc).__name__},
        )

    def _resume(self, cp: Checkpoint) -> None:
        """Take up the checkpoint's state (its report, when it has one)."""
        self.cp = cp
        if cp.report:
            self.report = Report.from_dict(cp.report)
        self.counts_before = Counts(**self.report.counts.__dict__)
        self.parked_before = self.report.batches.get("parked", 0)

    def _close(self, started: float) -> None:
        """Save the checkpoint and write the report; a complete file is marked done.

        A failure while closing fails the file too (the checkpoint is saved before the report, so
        a retry resumes and posts nothing again). A report that cannot be written is logged
        (counts, errors; no secret is ever in a report) and its error raised.
        """
        if self.continued and self.failure is None:
            try:
                self._save_checkpoint()
            except Exception as exc:
                self._record(exc)
        if not (self.continued and self.failure is None):
            self._finish(started)
        self._write_report()

    def _write_report(self) -> None:
        try:
            self.source.write_report(self.report)
        except Exception as exc:
            logger.error(
                "could not write the report; it follows here",
                extra={"report": asdict(self.report), "error": str(exc)},  # unchecked: it may be why
            )
            self.failure = self.failure or classify(exc)
            raise

    def _finish(self, started: float) -> None:
        """Write the rejects, then save the checkpoint (done only if the file is complete)."""
        report = self.report
        if report.status == "partial" and not report.errors:
            report.status = "complete"
        try:
            done = report.status == "complete"
            report.rejects_key = self.writer.finish(keep_parts=not done) or report.rejects_key
        except Exception as exc:
            self._record(exc)
            self.cp.pending_rejects = self.writer.buffered().decode().splitlines(keepends=True)
        report.timings["finished"] = utc_now()
        report.timings["last_invocation_seconds"] = round(time.time() - started, 3)
        if not self.state.loaded:
            return  # the state could not be read: never overwrite what may be there
        self.cp.reject_parts = self.writer.parts
        try:
            self._save_checkpoint(flush=False)
        except Exception as exc:
            self._record(exc)
            if isinstance(exc, StateStoreError):  # the backup holds it: mark it failed there too
                self.cp.finished = False
                try:
                    self.cp.report = self.report.to_dict()
                    self.source.save_backup(self.cp)
                except Exception as again:
                    self._record(again)

    def _save_checkpoint(self, *, flush: bool = True) -> None:
        if flush:
            self.cp.reject_parts = self.writer.flush()
            self.cp.pending_rejects = []
        self.cp.finished = self.report.status == "complete"
        self.cp.report = self.report.to_dict()
        self.state.save(self.cp)
        self._last_checkpoint = self.deps.clock()

    def _tick(self) -> None:
        """Checkpoint when ``checkpoint_interval`` has passed since the last one."""
        if self.deps.clock() - self._last_checkpoint >= self.deps.checkpoint_interval:
            self._save_checkpoint()

    # -- reading ------------------------------------------------------------------------------

    def _ingest(self) -> None:
        check_schema_name(self.ref.schema)  # before any Monetate call
        schema = self.deps.schemas.get(self.ref.schema)
        body = self.source.open()
        source = open_rows(
            body,
            self.ref.key,
            delimiter=self.settings.csv_delimiter,
            max_decompressed_bytes=self.settings.max_decompressed_bytes,
            max_compression_ratio=self.settings.max_compression_ratio,
            read_ahead=True,
        )
        try:
            self._read_source(schema, source)
        finally:
            source.close()

    def _read_source(self, schema: SchemaSpec, source: RowSource) -> None:
        self.report.format = source.format
        batch_rows = self.settings.rows.batch_max_rows
        rows, coercer, columns = items_of(source, schema, self.columns, batch_rows, skip=self.cp.rows_done)
        self._deliver(rows, coercer, columns, key_field(schema), self._file_sync(schema))

    def _file_sync(self, schema: SchemaSpec) -> FileSync:
        """This file's change-only sync: off unless ``SYNC_MODE=changes`` and the schema has a
        unique key; an object asking for a full post (``monetate-sync=all``) posts every row and
        refreshes the ledger."""
        source, wanted = self.deps.sync, self.deps.sync.mode == "changes"
        forced = wanted and schema.unique_key is not None and self._forced_full()
        session = source.session(schema, dry_run=self.ref.dry_run, metrics_sink=self.sync_metrics)
        if forced:
            logger.info("the file asks for a full post (monetate-sync=all): every row is posted")
        when = self.source.last_modified if self.source.last_modified is not None else time.time()
        sync = FileSync(session, source_time=when, origin=self.ref.etag, refresh=forced)
        self.report.sync["mode"] = sync.mode
        return sync

    def _forced_full(self) -> bool:
        if forced_full(metadata=self.source.metadata):
            return True
        return forced_full(tags=self.source.tags())

    # -- delivering ---------------------------------------------------------------------------

    def _deliver(
        self, rows: Iterator[Item], coercer: RowCoercer, columns: list[str], key: str | None, sync: FileSync
    ) -> None:
        settings = self.settings
        budget = Budget(self.remaining_ms, margin_ceiling=settings.deadline_margin_seconds)
        rows_per_post, bytes_per_post = settings.rows.batch_max_rows, settings.rows.batch_max_bytes
        # with sync, a unit is a lookup group of many batches; what is kept is posted in batches
        unit_rows, unit_bytes = (
            group_limits(rows_per_post, bytes_per_post) if sync.active else (rows_per_post, bytes_per_post)
        )
        scheduler = Scheduler(
            self.deps.client,
            self.ref.schema,
            concurrency=settings.post_concurrency,
            done_beyond=self.cp.done_beyond,
            park=self._park,
            complete=self._complete,
            tick=self._tick,
            dry_run=self.ref.dry_run,
            post_ms=self.post_ms,
            keys=KeyReader(key) if key is not None and not self.ref.dry_run else None,
            park_rows=self._park_behind,
            budget=budget,
            sync=sync,
            post_limits=(rows_per_post, bytes_per_post),
        )
        reader = UnitReader(
            Batcher(unit_rows, unit_bytes),
            coercer,
            columns,
            self.cp.next_unit,
            submit=scheduler.submit,
            pause=scheduler.pause,
            out_of_time=lambda: scheduler.stopped or budget.out_of_time(),
        )
        try:
            try:
                last = reader.read(rows)
            finally:
                self.continued = reader.stopped_early
            scheduler.drain()
            if scheduler.stopped:  # a batch ran out of time: it is the next invocation's first
                self.continued = True
            else:
                self.cp.next_unit = last
        except KeyRevokedError:
            # No further Monetate call: drop what has not started; finish nothing more.
            scheduler.abandon(cancel=True)
            raise
        except FileFormatError:
            scheduler.drain()
            raise
        except Exception:
            scheduler.abandon()  # what was posted is remembered; the rest is posted on a retry
            raise
        finally:
            scheduler.close()

    def _park_behind(self, unit: Unit, batch: Batch) -> int:
        """Park rows whose record already has a row parked earlier in this file (kept in order)."""
        queue = self.settings.records_queue_url
        if queue is None:
            raise SettingsError("RECORDS_QUEUE_URL is required to park rows but is not set")
        park_rows(
            self.deps.sqs,
            queue,
            self.ref,
            batch.rows,
            list(batch.lines),
            source_time=self.source.last_modified,
        )
        logger.info("parked rows behind an earlier parked row of the same record", extra={"rows": len(batch)})
        return len(batch)

    def _park(self, unit: Unit, exc: PartialDeliveryError) -> UnitOutcome:
        outcome = park_undelivered(
            self.deps.sqs,
            self.settings.records_queue_url,
            self.ref,
            exc,
            source_time=self.source.last_modified,
        )
        self.report.batches["parked"] += 1
        return outcome

    def _complete(self, unit: Unit) -> None:
        """Count a unit finished in order into the report, its rejects into the writer."""
        count_unit(self.report, self.writer, unit)
        self.cp.rows_done += unit.rows
        self.cp.next_unit = unit.seq + 1
        self.cp.done_beyond.pop(str(unit.seq), None)
