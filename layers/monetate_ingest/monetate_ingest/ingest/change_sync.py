"""Change-only sync of one file's batches: look up, skip the unchanged, record what was posted.

The scheduler runs :meth:`FileSync.plan` in the worker thread of each batch, after the batches in
flight that share its record keys have ended (per-key order, :mod:`.key_order`): so a row is
compared with the ledger only once the file's earlier rows of its key are posted and written (or
failed), and lookups overlap other batches' POSTs. :meth:`FileSync.record` writes the rows
Monetate accepted (201), in the same worker, before the batch's keys are released.

With sync on, a unit is read ``LOOKUP_GROUP`` batches at a time (a *lookup group*) and the rows
kept after the lookup are cut again into POST batches of the configured size
(:meth:`FileSync.post_batches`): so a nightly file with 2 % changed rows makes about 2 % of the
POSTs, not as many POSTs of a few rows each. Unit boundaries still depend on the file alone (the
group is cut before the lookup), so checkpoints and resumption work as without sync.

Within one group a key decides once, on its last row (the newest): if that row is unchanged (or
superseded) every row of the key in the group is skipped — Monetate already holds the last one's
values — else every row of the key is posted, in order, and the last one is written.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.sync.decide import SyncCounts
from monetate_ingest.sync.entries import SourceTime, SyncRow
from monetate_ingest.sync.session import SyncSession

#: POST batches per lookup group: with 2 % of rows changed, 40 batches' worth of rows keep about
#: 0.8 batch, so the POSTs follow the changes (one per group at least) — see ``bench_sync_load``.
LOOKUP_GROUP = 40
#: … and at most this many bytes of encoded rows (wide rows: a few groups in flight stay small).
LOOKUP_GROUP_MAX_BYTES = 8_000_000


def group_limits(rows_per_post: int, bytes_per_post: int) -> tuple[int, int]:
    """(rows, bytes) of one lookup group for POSTs of these limits."""
    return rows_per_post * LOOKUP_GROUP, max(
        bytes_per_post, min(bytes_per_post * LOOKUP_GROUP, LOOKUP_GROUP_MAX_BYTES)
    )


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
        lines = batch.lines
        last: dict[str, int] = {}  # record key -> index of its last row in the batch
        sync_rows: dict[str, SyncRow] = {}
        keys: list[str] = []
        for i, (key, row) in enumerate(self._keyed(batch)):  # one row decoded at a time
            keys.append(key)
            last[key] = i
            sync_rows[key] = self.session.row(row, SourceTime(self.source_time, self.origin, lines[i]))
        if self.refresh:  # every row posted, the last of each key written
            return SyncPlan(batch, 0, {}, {lines[i]: sync_rows[key] for key, i in last.items()})
        decisions = dict(zip(sync_rows, self.session.classify(list(sync_rows.values())), strict=True))
        keep = [i for i, key in enumerate(keys) if decisions[key].posts]
        tally = SyncCounts()
        tally.add([decisions[key] for key in keys])  # per row: a key's rows share its decision
        counts = {name: value for name, value in tally.to_dict().items() if isinstance(value, int)}
        writes = {lines[last[key]]: sync_rows[key] for key, d in decisions.items() if d.posts}
        if len(keep) == len(keys):
            return SyncPlan(batch, 0, counts, writes)
        kept = Batch.of(None, [lines[i] for i in keep], [batch.encoded[i] for i in keep]) if keep else None
        return SyncPlan(kept, len(keys) - len(keep), counts, writes)

    def _keyed(self, batch: Batch) -> Iterator[tuple[str, dict[str, Any]]]:
        """(record key, coerced row) of each row, decoded one at a time."""
        unique_key = self.session.unique_key
        for row in batch.iter_rows():
            yield str(row[unique_key]), row

    @staticmethod
    def post_batches(batch: Batch, max_rows: int, max_bytes: int) -> list[Batch]:
        """The kept rows of a lookup group cut into POST batches within the configured limits."""
        if len(batch) <= max_rows and len(batch.body) <= max_bytes:
            return [batch]
        batcher = Batcher(max_rows, max_bytes)
        out = [
            full
            for line, data in zip(batch.lines, batch.encoded, strict=True)
            if (full := batcher.add_encoded(line, data))
        ]
        last = batcher.flush()
        return out + ([last] if last is not None else [])

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
