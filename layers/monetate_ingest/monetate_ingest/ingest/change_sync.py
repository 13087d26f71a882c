"""Change-only sync of one file's batches: look up, skip the unchanged, record what was posted.

The scheduler runs :meth:`FileSync.plan` in the worker thread of each batch, after the batches in
flight that share its record keys have ended (per-key order, :mod:`.key_order`): so a row is
compared with the ledger only once the file's earlier rows of its key are posted and written (or
failed), and lookups overlap other batches' POSTs. :meth:`FileSync.record` writes the rows
Monetate accepted (201), in the same worker, before the batch's keys are released.

Within one batch a key decides once, on its last row (the newest): if that row is unchanged (or
superseded) every row of the key in the batch is skipped — Monetate already holds the last one's
values — else every row of the key is posted, in order, and the last one is written.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import MetricUnit

from monetate_ingest.delivery.batching import Batch
from monetate_ingest.sync.decide import Decision
from monetate_ingest.sync.entries import SourceTime, SyncRow
from monetate_ingest.sync.session import SyncSession


@dataclass(slots=True)
class SyncPlan:
    """What :meth:`FileSync.plan` decided for one batch.

    ``batch``: the rows to post (None: none); ``skipped``: rows not posted (unchanged or
    superseded); ``counts``: rows per decision (``new``, ``changed``, ``unchanged``,
    ``superseded``; ``unchanged`` includes ``superseded``); ``writes``: the row to write per line
    once that line is posted (the last row of each posted key).
    """

    batch: Batch | None
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    writes: dict[int, SyncRow] = field(default_factory=dict)


class FileSync:
    """One file's change-only sync (the file's S3 ``LastModified`` and ETag date its rows).

    ``refresh``: a file that forces a full post (``monetate-sync=all``) posts every row without a
    lookup but still writes the ledger, so the next change-only load compares with what Monetate
    now holds (a stale entry could otherwise match a later row and skip a real change).
    """

    def __init__(
        self, session: SyncSession, *, source_time: float, origin: str, refresh: bool = False
    ) -> None:
        self.session = session
        self.source_time = source_time
        self.origin = origin
        self.refresh = refresh

    @property
    def active(self) -> bool:
        return self.session.active

    @property
    def mode(self) -> str:
        return "all" if self.refresh else self.session.counts.mode

    def plan(self, batch: Batch) -> SyncPlan:
        """Look the batch's keys up and keep the rows to post (every row when inactive)."""
        if not self.active or len(batch) == 0:
            return SyncPlan(batch)
        rows, lines = batch.rows, batch.lines
        unique_key = self.session.unique_key
        last: dict[str, int] = {}  # record key -> index of its last row in the batch
        keys: list[str] = []
        for i, row in enumerate(rows):
            key = str(row[unique_key])
            keys.append(key)
            last[key] = i
        sync_rows = {
            key: self.session.row(rows[i], SourceTime(self.source_time, self.origin, lines[i]))
            for key, i in last.items()
        }
        if self.refresh:  # every row posted, the last of each key written
            return SyncPlan(batch, 0, {}, {lines[i]: sync_rows[key] for key, i in last.items()})
        decisions = dict(zip(sync_rows, self.session.classify(list(sync_rows.values())), strict=True))
        keep = [i for i, key in enumerate(keys) if decisions[key].posts]
        counts = dict.fromkeys(("new", "changed", "unchanged", "superseded"), 0)
        for key in keys:
            decision = decisions[key]
            if decision is Decision.SUPERSEDED:
                counts["superseded"] += 1
                counts["unchanged"] += 1
            else:
                counts[decision.value] += 1
        writes = {lines[last[key]]: sync_rows[key] for key, d in decisions.items() if d.posts}
        if len(keep) == len(rows):
            return SyncPlan(batch, 0, counts, writes)
        kept = (
            Batch.of([rows[i] for i in keep], [lines[i] for i in keep], [batch.encoded[i] for i in keep])
            if keep
            else None
        )
        return SyncPlan(kept, len(rows) - len(keep), counts, writes)

    def record(self, plan: SyncPlan, posted: list[int]) -> None:
        """Write the ledger entries of the posted lines (nothing in a dry run or when inactive)."""
        if not plan.writes or not posted:
            return
        rows = [plan.writes[line] for line in posted if line in plan.writes]
        self.session.posted(rows)


class MetricSamples:
    """The ledger's metrics of one invocation (latencies, failures), gathered from the workers for
    the handler's one EMF line per invocation (``ingest.handler._emit``)."""

    def __init__(self) -> None:
        self.values: defaultdict[tuple[str, MetricUnit], list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def add_metric(self, *, name: str, unit: MetricUnit, value: float) -> None:
        with self._lock:
            self.values[(name, unit)].append(value)
