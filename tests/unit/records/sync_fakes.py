"""Fakes for PostRecords with change-only sync: a :class:`World` on the in-memory ledger, parked
bodies with their file's source, ledgers that fail."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.records.handler import BatchOutcome, process_messages
from monetate_ingest.records.process import Incoming
from monetate_ingest.sync.decide import SyncMode
from monetate_ingest.sync.entries import LedgerEntry
from monetate_ingest.sync.factory import SyncSource
from monetate_ingest.sync.ledger import Ledger, Lookup, WriteOutcome
from monetate_ingest.sync.memory import InMemoryLedger

from tests.unit.records.fakes import FakeClock, World, env
from tests.unit.sync.test_session import Metrics

T0 = 1_714_600_000.0
SECRET = b"k" * 32
SUBSCRIBERS = SchemaSpec.from_api(
    {
        "name": "subscribers",
        "fields": {
            "email": {"data_type": "STRING", "unique_key": True},
            "credit": {"data_type": "NUMBER"},
            "opted_in": {"data_type": "BOOLEAN"},
        },
    }
)


class Synced:
    """A :class:`World` whose PostRecords runs change-only sync on ``ledger`` (clock at ``T0``)."""

    def __init__(
        self, ledger: Ledger | None = None, *, mode: SyncMode = "changes", max_rows: int = 500
    ) -> None:
        self.w = World(max_rows)
        self.w.schemas.specs[SUBSCRIBERS.name] = SUBSCRIBERS
        self.ledger = ledger if ledger is not None else InMemoryLedger()
        self.clock = FakeClock(T0)
        self.ledger_metrics = Metrics()
        self.w.deps.sync = SyncSource(
            mode, 7, self.ledger, lambda: SECRET, "acme", "production",
            clock=self.clock, metrics_sink=self.ledger_metrics,
        )  # fmt: skip
        self.batches = 0

    def run(self, *bodies: str, sent: Sequence[float | None] | float | None = None) -> BatchOutcome:
        """One SQS batch (ids ``b<n>m<i>``); ``sent``: each message's SentTimestamp in seconds."""
        times = list(sent) if isinstance(sent, Sequence) else [sent] * len(bodies)
        pairs = enumerate(zip(bodies, times, strict=True))
        messages = [Incoming(f"b{self.batches}m{i}", b, 1, t) for i, (b, t) in pairs]
        self.batches += 1
        self.w.monetate.posts.clear()
        return process_messages(messages, self.w.deps)

    def posted_ids(self, key: str = "purchase_id") -> list[Any]:
        """The unique keys POSTed by the last :meth:`run`."""
        return [r[key] for _, rows in self.w.monetate.posts for r in rows]

    def entries(self) -> list[LedgerEntry]:
        assert isinstance(self.ledger, InMemoryLedger)
        return list(self.ledger.entries.values())


def parked(*rows: dict[str, Any], lines: list[int], time: float | None, etag: str = "e1") -> str:
    """A body as IngestFile parks it: the file's source, its rows' lines and (newer) its time."""
    source: dict[str, Any] = {"bucket": "b", "key": "incoming/purchases/day.csv", "etag": etag, "size": 9}
    source["lines"] = lines
    if time is not None:
        source["time"] = time
    return env(*rows, source=source)


class UnwritableLedger(InMemoryLedger):
    """Reads work; every write fails (the store's throttling or an outage after the lookups)."""

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        return WriteOutcome(failed=len(entries))


class RaisingLedger:
    """A ledger with a bug: both calls raise."""

    def lookup(self, key_ids: Collection[str]) -> Lookup:
        raise RuntimeError("boom")

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        raise RuntimeError("boom")
