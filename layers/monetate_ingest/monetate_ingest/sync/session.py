"""One file's (or one message batch's) change-only sync: classify rows, record what was posted.

The writers call :meth:`SyncSession.classify` on valid rows before batching and
:meth:`SyncSession.posted` with the rows Monetate accepted (201). A lookup that fails posts its
rows (fail open, metric ``SyncLedgerLookupFailed``); a write that fails is logged and counted
(metric ``SyncLedgerWriteFailed``) and those rows are posted again next time. A dry run
classifies and counts but never writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from monetate_ingest.observability import metrics
from monetate_ingest.sync.decide import Decision, SyncCounts, SyncMode, decide_all
from monetate_ingest.sync.entries import SourceTime, SyncRow
from monetate_ingest.sync.fingerprint import LedgerHasher
from monetate_ingest.sync.ledger import Ledger, WriteOutcome


class SyncSession:
    """Change-only sync of one source; thread-safe (lookups may run beside posting)."""

    def __init__(
        self,
        ledger: Ledger,
        hasher: LedgerHasher,
        *,
        unique_key: str,
        mode: SyncMode,
        full_every_days: int,
        dry_run: bool = False,
        clock: Callable[[], float] = time.time,
        metrics_sink: Any = None,
    ) -> None:
        self.ledger = ledger
        self.hasher = hasher
        self.unique_key = unique_key
        self.full_every_days = full_every_days
        self.dry_run = dry_run
        self.clock = clock
        self.counts = SyncCounts(mode=mode)
        self.lookup_failed = 0
        self.writes = WriteOutcome()
        self._metrics = metrics if metrics_sink is None else metrics_sink
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.counts.mode == "changes"

    def row(self, coerced: Mapping[str, Any], source: SourceTime) -> SyncRow:
        """The hashed view of a coerced row (which carries its unique key: coercion requires it)."""
        key = coerced[self.unique_key]
        return SyncRow(self.hasher.key_id(str(key)), self.hasher.fingerprint(coerced), source)

    def classify(self, rows: Sequence[SyncRow]) -> list[Decision]:
        """One decision per row (each key once per call); a row is posted when ``decision.posts``.

        With sync off every row is new and nothing is counted or looked up.
        """
        if not rows or not self.active:
            return [Decision.NEW] * len(rows)
        started = time.perf_counter()
        found = self.ledger.lookup([r.key_id for r in rows])
        elapsed_ms = (time.perf_counter() - started) * 1e3
        self._metric("SyncLedgerLookupLatency", MetricUnit.Milliseconds, elapsed_ms)
        if found.failed:
            self._metric("SyncLedgerLookupFailed", MetricUnit.Count, found.failed)
        decisions = decide_all(rows, found.entries, now=self.clock(), full_every_days=self.full_every_days)
        with self._lock:
            self.counts.add(decisions)
            self.lookup_failed += found.failed
        return decisions

    def posted(self, rows: Sequence[SyncRow]) -> WriteOutcome:
        """Record rows Monetate accepted (201). Nothing is written in a dry run or with sync off."""
        if not rows or not self.active or self.dry_run:
            return WriteOutcome()
        started = time.perf_counter()
        entries = [r.entry(self.clock()) for r in rows]
        outcome = self.ledger.record(entries, self.full_every_days)
        elapsed_ms = (time.perf_counter() - started) * 1e3
        self._metric("SyncLedgerWriteLatency", MetricUnit.Milliseconds, elapsed_ms)
        if outcome.failed:
            self._metric("SyncLedgerWriteFailed", MetricUnit.Count, outcome.failed)
        with self._lock:
            self.writes += outcome
        return outcome

    def _metric(self, name: str, unit: MetricUnit, value: float) -> None:
        self._metrics.add_metric(name=name, unit=unit, value=value)
