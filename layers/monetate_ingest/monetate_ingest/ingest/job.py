"""One file through the pipeline: S3 → rows → coercion → batches → Monetate, with a report.

:class:`FileIngest` orchestrates: it loads the checkpoint, opens the object
(:mod:`~monetate_ingest.ingest.source`), compiles the coercer (:mod:`~monetate_ingest.ingest.columns`),
cuts the rows into units (:mod:`~monetate_ingest.ingest.units`), lets the
:mod:`~monetate_ingest.ingest.scheduler` post them, counts each finished unit into the report, and
checkpoints. Every row ends posted, rejected (with its line and reason) or parked.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.delivery.bisection import PartialDeliveryError
from monetate_ingest.errors import SettingsError
from monetate_ingest.formats.coercion import RowCoercer
from monetate_ingest.formats.exceptions import FileFormatError, UnknownColumnsError
from monetate_ingest.formats.readers import RowSource, SourceRow, open_rows
from monetate_ingest.formats.readers.csv_rows import CsvRows
from monetate_ingest.ingest.budget import Budget
from monetate_ingest.ingest.checkpoints import Checkpoint, CheckpointStore
from monetate_ingest.ingest.columns import ColumnPolicy
from monetate_ingest.ingest.parking import park_rows, park_undelivered
from monetate_ingest.ingest.record_keys import KeyReader, key_field
from monetate_ingest.ingest.rejects import reject_line
from monetate_ingest.ingest.report import Counts, Report, utc_now
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.ingest.scheduler import Scheduler
from monetate_ingest.ingest.source import SourceObject, SourceUnavailableError
from monetate_ingest.ingest.units import Item, Unit, UnitOutcome, UnitReader
from monetate_ingest.monetate.exceptions import KeyRevokedError, UnknownSchemaError
from monetate_ingest.monetate.schema import SchemaCache, SchemaSpec
from monetate_ingest.observability import logger
from monetate_ingest.settings import IngestSettings

#: JSON files: rows looked at for unknown fields before anything is posted.
JSON_PEEK_ROWS = 1_000
MAX_REASON_KEYS = 50
#: CSV rows are read, coerced and encoded this many at a time (at most; see ``CsvRows.cell_blocks``).
MAX_BLOCK_ROWS = 2_000


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
        self.cp = Checkpoint()
        self.report = self._new_report()
        self.writer = self.source.rejects([])
        #: The counts and parked batches before this invocation (its metrics are the difference).
        self.counts_before = Counts()
        self.parked_before = 0
        self.continued = False
        #: Milliseconds per batch POST (with retries and bisection) in this invocation.
        self.post_ms: list[float] = []
        self._last_checkpoint = deps.clock()

    # -- orchestration ------------------------------------------------------------------------

    def run(self) -> Report:
        """Process the file from its checkpoint; a failed file can be retried (not marked done)."""
        started = time.time()
        cp = self.deps.checkpoints.load(self.ref.identity) or Checkpoint()
        if cp.finished:
            logger.info("file already finished; nothing to do", extra={"file": self.ref.identity})
            self._resume(cp)
            return self.report
        self._resume(cp)
        report = self.report
        report.status, report.errors = "partial", []
        cp.invocation += 1
        report.invocations = cp.invocation
        self.writer = self.source.rejects(cp.reject_parts)
        self._last_checkpoint = self.deps.clock()
        try:
            self._ingest()
        except KeyRevokedError as exc:
            report.fail("key_revoked", f"Monetate refused the API key (403): {exc.message}")
            self._finish(started)
            raise
        except UnknownSchemaError as exc:
            report.fail("unknown_schema", str(exc))
        except UnknownColumnsError as exc:
            report.fail("unknown_columns", str(exc), columns=exc.columns)
        except SourceUnavailableError as exc:
            report.fail(exc.code, str(exc))
        except FileFormatError as exc:
            report.fail("unreadable_file", str(exc), **({"line": exc.line} if exc.line else {}))
        if self.continued:
            self._save_checkpoint()
            self.source.write_report(report)
            return report
        if not report.errors:
            report.status = "complete"
        self._finish(started)
        return report

    def _resume(self, cp: Checkpoint) -> None:
        """Take up the checkpoint's state (its report, when it has one)."""
        self.cp = cp
        if cp.report:
            self.report = Report.from_dict(cp.report)
        self.counts_before = Counts(**self.report.counts.__dict__)
        self.parked_before = self.report.batches.get("parked", 0)

    def _new_report(self) -> Report:
        return Report(
            source=self.ref.source(),
            schema=self.ref.schema,
            dry_run=self.ref.dry_run,
            timings={"started": utc_now()},
        )

    def _finish(self, started: float) -> None:
        """Write rejects and report. A complete file is marked done; a failed one stays resumable."""
        report = self.report
        done = report.status == "complete"
        report.rejects_key = self.writer.finish(keep_parts=not done)
        report.timings["finished"] = utc_now()
        report.timings["last_invocation_seconds"] = round(time.time() - started, 3)
        self.cp.finished = done
        self.cp.reject_parts = self.writer.parts
        self._save_checkpoint(flush=False)
        self.source.write_report(report)

    def _save_checkpoint(self, *, flush: bool = True) -> None:
        if flush:
            self.cp.reject_parts = self.writer.flush()
        self.cp.report = self.report.to_dict()
        self.deps.checkpoints.save(self.ref.identity, self.cp)
        self._last_checkpoint = self.deps.clock()

    def _tick(self) -> None:
        """Checkpoint when ``checkpoint_interval`` has passed since the last one."""
        if self.deps.clock() - self._last_checkpoint >= self.deps.checkpoint_interval:
            self._save_checkpoint()

    # -- reading ------------------------------------------------------------------------------

    def _ingest(self) -> None:
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
        rows: Iterator[Item]
        skip = self.cp.rows_done
        if isinstance(source, CsvRows):
            columns = source.header() or []
            coercer = self.columns.coercer(schema, columns, csv=True)
            if coercer.encode_block is not None:  # runs of good rows, encoded column by column
                size = max(1, min(self.settings.rows.batch_max_rows, MAX_BLOCK_ROWS))
                rows, skip = source.cell_blocks(size, skip=skip), 0
            elif coercer.coerce_cells is not None:  # a good row as its cells: no {column: cell} dict
                rows = source.cell_rows()
            else:
                rows = iter(source)
        else:
            json_rows = iter(source)
            peeked = list(itertools.islice(json_rows, JSON_PEEK_ROWS))
            columns = _keys_of(peeked)
            rows = itertools.chain(peeked, json_rows)
            coercer = self.columns.coercer(schema, columns, csv=False)
        if skip:
            rows = itertools.islice(rows, skip, None)
        self._deliver(rows, coercer, columns, key_field(schema))

    # -- delivering ---------------------------------------------------------------------------

    def _deliver(
        self, rows: Iterator[Item], coercer: RowCoercer, columns: list[str], key: str | None
    ) -> None:
        settings = self.settings
        budget = Budget(self.remaining_ms, margin_ceiling=settings.deadline_margin_seconds)
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
        )
        reader = UnitReader(
            Batcher(settings.rows.batch_max_rows, settings.rows.batch_max_bytes),
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
            scheduler.close(cancel=True)
            raise
        except FileFormatError:
            scheduler.drain()
            raise
        finally:
            scheduler.close()

    def _park_behind(self, unit: Unit, batch: Batch) -> int:
        """Park rows whose record already has a row parked earlier in this file (kept in order)."""
        queue = self.settings.records_queue_url
        if queue is None:
            raise SettingsError("RECORDS_QUEUE_URL is required to park rows but is not set")
        park_rows(self.deps.sqs, queue, self.ref, batch.rows, list(batch.lines))
        logger.info("parked rows behind an earlier parked row of the same record", extra={"rows": len(batch)})
        return len(batch)

    def _park(self, unit: Unit, exc: PartialDeliveryError) -> UnitOutcome:
        outcome = park_undelivered(self.deps.sqs, self.settings.records_queue_url, self.ref, exc)
        self.report.batches["parked"] += 1
        return outcome

    def _complete(self, unit: Unit) -> None:
        """Count a unit finished in order into the report, its rejects into the writer."""
        outcome = unit.outcome or UnitOutcome()
        counts = Counts(read=unit.rows, rejected=len(unit.rejects))
        for data in unit.rejects:
            self.writer.add(data)
        self._count_reasons(unit.reject_fields)
        refused = outcome.refused
        if refused:
            raw_by_line = dict(zip(unit.batch.lines, unit.batch.rows, strict=True)) if unit.batch else {}
            for line, reason in refused:
                self.writer.add(reject_line(line, reason, raw_by_line.get(line), None))
            self._count_reasons(["monetate_refused"] * len(refused))
        counts.rejected += len(refused)
        counts.posted = len(outcome.posted)
        counts.parked = outcome.parked
        counts.check()
        self.report.counts.add(counts)
        self.report.batches["posts"] += outcome.posts
        if counts.posted:
            self.report.batches["posted"] += 1
        self.cp.rows_done += unit.rows
        self.cp.next_unit = unit.seq + 1
        self.cp.done_beyond.pop(str(unit.seq), None)

    def _count_reasons(self, keys: list[str]) -> None:
        reasons = self.report.reject_reasons
        for key in keys:
            if key in reasons or len(reasons) < MAX_REASON_KEYS:
                reasons[key] = reasons.get(key, 0) + 1
            else:
                reasons["other"] = reasons.get("other", 0) + 1


def _keys_of(rows: list[SourceRow]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        if row.values:
            for k in row.values:
                seen.setdefault(k, None)
    return list(seen)
