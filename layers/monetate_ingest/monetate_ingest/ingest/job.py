"""One file through the pipeline: S3 → rows → coercion → batches → Monetate, with a report.

The file is cut into *units*: the rows read between two batch boundaries, with the rows rejected
among them. Units are posted concurrently but finished in order, so the checkpoint is always "the
first ``rows_done`` rows are finished" plus the units finished early. Every row ends posted,
rejected (with its line and reason) or parked on the records queue; the report's counts add up.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.delivery.bisection import BisectResult, PartialDeliveryError, post_with_bisection
from monetate_ingest.errors import MonetateIngestError
from monetate_ingest.formats.coercion import RowCoercer, compile_coercer
from monetate_ingest.formats.exceptions import FileFormatError, UnknownColumnsError
from monetate_ingest.formats.readers import RowSource, SourceRow, open_rows
from monetate_ingest.formats.readers.csv_rows import CsvRows
from monetate_ingest.ingest.checkpoints import Checkpoint, CheckpointStore
from monetate_ingest.ingest.concurrency import AdaptiveLimit
from monetate_ingest.ingest.parking import park_rows
from monetate_ingest.ingest.rejects import RejectsWriter, reject_line
from monetate_ingest.ingest.report import Counts, Report, utc_now
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.ingest.units import Item, Unit, UnitReader
from monetate_ingest.monetate.exceptions import (
    BadRequestError,
    KeyRevokedError,
    RateLimitedError,
    UnknownSchemaError,
)
from monetate_ingest.monetate.schema import SchemaCache, SchemaSpec
from monetate_ingest.observability import logger
from monetate_ingest.settings import IngestSettings

#: JSON files: rows looked at for unknown fields before anything is posted.
JSON_PEEK_ROWS = 1_000
MAX_REASON_KEYS = 50
#: CSV rows are read, coerced and encoded this many at a time (at most; see ``CsvRows.cell_blocks``).
MAX_BLOCK_ROWS = 2_000


class _FieldsRefusedError(UnknownColumnsError):
    """``UNKNOWN_COLUMNS=add``, but Monetate refused to add the columns as fields (PATCH 400)."""

    def __init__(self, schema: str, columns: list[str], reason: str) -> None:
        super().__init__(schema, columns)
        names = ", ".join(repr(c) for c in columns)
        self.args = (
            f"columns {names} are not fields of schema {schema!r} and Monetate refused to add them "
            f"as STRING fields ({reason}). Rename the columns, or set UNKNOWN_COLUMNS=ignore to drop them.",
        )


class SourceUnavailableError(MonetateIngestError):
    """The object named by the event is gone or was replaced: the file fails with ``code``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


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
        self.remaining_ms = remaining_ms or (lambda: 1 << 30)
        self.limit = AdaptiveLimit(settings.post_concurrency)
        self._throttled_seen = getattr(deps.client, "stats", {}).get("throttled", 0)
        self.continued = False
        #: Milliseconds per batch POST (with retries and bisection) in this invocation.
        self.post_ms: list[float] = []

    # -- orchestration ------------------------------------------------------------------------

    def run(self) -> Report:
        """Process the file from its checkpoint; a failed file can be retried (not marked done)."""
        started = time.time()
        cp = self.deps.checkpoints.load(self.ref.identity) or Checkpoint()
        if cp.finished:
            logger.info("file already finished; nothing to do", extra={"file": self.ref.identity})
            self.cp, self.report = cp, Report.from_dict(cp.report)
            self.counts_before = Counts(**self.report.counts.__dict__)
            self.parked_before = self.report.batches.get("parked", 0)
            return self.report
        report = Report.from_dict(cp.report) if cp.report else self._new_report()
        report.status, report.errors = "partial", []
        cp.invocation += 1
        report.invocations = cp.invocation
        self.cp, self.report = cp, report
        self.counts_before = Counts(**report.counts.__dict__)
        self.parked_before = report.batches.get("parked", 0)
        self.writer = RejectsWriter(self.deps.s3, self.ref, cp.reject_parts)
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
            self._write_report()
            return report
        if not report.errors:
            report.status = "complete"
        self._finish(started)
        return report

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
        self._write_report()

    def _write_report(self) -> None:
        self.deps.s3.put_object(
            Bucket=self.ref.bucket,
            Key=self.ref.report_key,
            Body=self.report.to_json(),
            ContentType="application/json",
        )

    def _save_checkpoint(self, *, flush: bool = True) -> None:
        if flush:
            self.cp.reject_parts = self.writer.flush()
        self.cp.report = self.report.to_dict()
        self.deps.checkpoints.save(self.ref.identity, self.cp)
        self._last_checkpoint = self.deps.clock()

    # -- reading ------------------------------------------------------------------------------

    def _ingest(self) -> None:
        schema = self.deps.schemas.get(self.ref.schema)
        obj = self._open_object()
        source = open_rows(
            obj["Body"],
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
            coercer = self._coercer(schema, columns, csv=True)
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
            coercer = self._coercer(schema, columns, csv=False)
        if skip:
            rows = itertools.islice(rows, skip, None)
        self._deliver(rows, coercer, columns)

    def _open_object(self) -> Any:
        """The object this event names; gone or replaced since is a clear failure, not a crash."""
        from botocore.exceptions import ClientError

        try:
            return self.deps.s3.get_object(Bucket=self.ref.bucket, Key=self.ref.key, IfMatch=self.ref.etag)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412"):
                raise SourceUnavailableError(
                    "object_changed",
                    f"s3://{self.ref.bucket}/{self.ref.key} was replaced after this event (ETag "
                    f"{self.ref.etag} is gone); the newer upload is processed by its own event",
                ) from None
            if code in ("NoSuchKey", "404"):
                raise SourceUnavailableError(
                    "object_missing", f"s3://{self.ref.bucket}/{self.ref.key} was deleted before it was read"
                ) from None
            raise

    def _coercer(self, schema: SchemaSpec, columns: list[str], *, csv: bool) -> RowCoercer:
        policy = self.settings.rows.unknown_columns
        coercer = compile_coercer(
            schema, columns if csv else None, unknown=policy, naive_tz=self.settings.rows.naive_datetime_tz
        )
        # JSON keys are resolved per row; the peeked rows' keys stand for the file's columns.
        unknown = (coercer if csv else compile_coercer(schema, columns, unknown=policy)).unknown_columns
        if unknown and policy == "reject":
            raise UnknownColumnsError(schema.name, unknown)
        if unknown and policy == "add" and not self.ref.dry_run:
            fields = {c.strip(): {"data_type": "STRING"} for c in unknown}
            try:
                self.deps.client.add_fields(schema.name, fields)
            except BadRequestError as exc:  # Monetate refused the new fields: fail with a report
                raise _FieldsRefusedError(schema.name, unknown, exc.message) from exc
            logger.info("added fields to schema", extra={"schema": schema.name, "fields": sorted(fields)})
            schema = self.deps.schemas.refresh(schema.name)
            coercer = compile_coercer(
                schema,
                columns if csv else None,
                unknown=policy,
                naive_tz=self.settings.rows.naive_datetime_tz,
            )
        return coercer

    # -- delivering ---------------------------------------------------------------------------

    def _deliver(self, rows: Iterator[Item], coercer: RowCoercer, columns: list[str]) -> None:
        inflight: deque[Unit] = deque()
        pool = ThreadPoolExecutor(max_workers=self.settings.post_concurrency)
        try:
            last = self._read_units(rows, coercer, columns, pool, inflight)
            self._settle(inflight, block=True, drain=True)
            self.cp.next_unit = last
        except KeyRevokedError:
            # No further Monetate call: drop what has not started; finish nothing more.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except FileFormatError:
            self._settle(inflight, block=True, drain=True)
            raise
        finally:
            pool.shutdown(wait=True)

    def _read_units(
        self,
        rows: Iterator[Item],
        coercer: RowCoercer,
        columns: list[str],
        pool: ThreadPoolExecutor,
        inflight: deque[Unit],
    ) -> int:
        """Read rows into units and submit them; returns the number of the next unit to read."""
        margin_ms = self.settings.deadline_margin_seconds * 1000
        backlog = 2 * self.settings.post_concurrency

        def pause() -> None:
            if len(inflight) > backlog:
                self._settle(inflight, block=True)

        reader = UnitReader(
            Batcher(self.settings.rows.batch_max_rows, self.settings.rows.batch_max_bytes),
            coercer,
            columns,
            self.cp.next_unit,
            submit=lambda unit: self._submit(pool, inflight, unit),
            pause=pause,
            out_of_time=lambda: self.remaining_ms() < margin_ms,
        )
        try:
            return reader.read(rows)
        finally:
            self.continued = reader.stopped_early

    def _submit(self, pool: ThreadPoolExecutor, inflight: deque[Unit], unit: Unit) -> None:
        if unit.rows == 0 and unit.batch is None:
            return
        done = self.cp.done_beyond.pop(str(unit.seq), None)
        if done is not None:
            unit.outcome = done  # finished by an earlier invocation: do not post again
        elif unit.batch is not None and not self.ref.dry_run:
            running = [u.future for u in inflight if u.future is not None and not u.future.done()]
            while len(running) >= self.limit.limit:
                wait(running, return_when=FIRST_COMPLETED)
                self._settle(inflight, block=False)
                running = [u.future for u in inflight if u.future is not None and not u.future.done()]
            unit.future = pool.submit(self._post, unit.batch)
        inflight.append(unit)
        self._settle(inflight, block=False)

    def _settle(self, inflight: deque[Unit], *, block: bool, drain: bool = False) -> None:
        """Finish units in order; record early finishers; checkpoint now and then.

        ``block`` waits for the oldest unit's post; ``drain`` waits for all of them.
        """
        while inflight:
            head = inflight[0]
            if head.outcome is None and head.future is not None and not head.future.done():
                if not (block or drain):
                    break
                wait([head.future])
                block = False
            inflight.popleft()
            self._complete(head)
        for u in inflight:  # finished early: remember for the checkpoint
            if u.future is not None and u.future.done() and u.outcome is None:
                u.outcome = self._outcome(u)
                self.cp.done_beyond[str(u.seq)] = u.outcome
        if self.deps.clock() - self._last_checkpoint >= self.deps.checkpoint_interval:
            self._save_checkpoint()

    def _adapt(self) -> None:
        """Halve the concurrency when the client met 429s since the last batch, else grow it."""
        throttled = getattr(self.deps.client, "stats", {}).get("throttled", 0)
        if throttled > self._throttled_seen:
            self._throttled_seen = throttled
            self.limit.on_throttle()
        else:
            self.limit.on_success()

    def _post(self, batch: Batch) -> BisectResult:
        """One batch to Monetate (bisected on 400), timed for the ``PostLatency`` metric."""
        started = time.perf_counter()
        try:
            return post_with_bisection(self.deps.client, self.ref.schema, batch)
        finally:
            self.post_ms.append((time.perf_counter() - started) * 1000)

    def _outcome(self, unit: Unit) -> dict[str, Any]:
        """Posted/refused/parked for a finished unit (parks what could not be delivered)."""
        batch = unit.batch
        if batch is None:
            return {"posted": [], "refused": [], "parked": 0, "posts": 0}
        if unit.future is None:  # dry run: what would have been posted
            return {"posted": list(batch.lines), "refused": [], "parked": 0, "posts": 0}
        try:
            res = unit.future.result()
            self._adapt()
            return {"posted": res.posted, "refused": res.refused, "parked": 0, "posts": res.posts}
        except PartialDeliveryError as exc:
            if isinstance(exc.cause, RateLimitedError):
                self.limit.on_throttle()
            rows = [r for b in exc.pending for r in b.rows]
            lines = [ln for b in exc.pending for ln in b.lines]
            queue = self.settings.records_queue_url
            if queue is None:  # dry runs never post, so only a misconfiguration gets here
                raise
            park_rows(self.deps.sqs, queue, self.ref, rows, lines)
            logger.warning(
                "parked rows on the records queue after Monetate kept failing",
                extra={"file": self.ref.identity, "rows": len(rows), "cause": str(exc.cause)},
            )
            self.report.batches["parked"] += 1
            return {
                "posted": exc.result.posted,
                "refused": exc.result.refused,
                "parked": len(rows),
                "posts": exc.result.posts,
            }

    def _complete(self, unit: Unit) -> None:
        outcome = unit.outcome if unit.outcome is not None else self._outcome(unit)
        counts = Counts(read=unit.rows, rejected=len(unit.rejects))
        for data in unit.rejects:
            self.writer.add(data)
        self._count_reasons(unit.reject_fields)
        refused = outcome["refused"]
        if refused:
            raw_by_line = dict(zip(unit.batch.lines, unit.batch.rows, strict=True)) if unit.batch else {}
            for line, reason in refused:
                self.writer.add(reject_line(line, reason, raw_by_line.get(line), None))
            self._count_reasons(["monetate_refused"] * len(refused))
        counts.rejected += len(refused)
        counts.posted = len(outcome["posted"])
        counts.parked = outcome["parked"]
        counts.check()
        self.report.counts.add(counts)
        self.report.batches["posts"] += outcome.get("posts", 0)
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
