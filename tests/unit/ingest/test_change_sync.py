"""One file's change-only sync per batch (``ingest.change_sync``) against the in-memory ledger."""

from __future__ import annotations

from typing import Any

from monetate_ingest.delivery.batching import Batch, encode
from monetate_ingest.delivery.bisection import PartialDeliveryError
from monetate_ingest.ingest.change_sync import FileSync
from monetate_ingest.ingest.scheduler import Scheduler
from monetate_ingest.ingest.units import Unit, UnitOutcome
from monetate_ingest.monetate.exceptions import TransientApiError
from monetate_ingest.sync.fingerprint import LedgerHasher
from monetate_ingest.sync.memory import InMemoryLedger
from monetate_ingest.sync.session import SyncSession

HASHER = LedgerHasher(b"k" * 32, "acme", "production", "customers")
T0 = 1_714_600_000.0


def _batch(rows: list[dict[str, Any]], first_line: int = 2) -> Batch:
    lines = list(range(first_line, first_line + len(rows)))
    return Batch.of(rows, lines, [encode(r) for r in rows])


def _file_sync(
    ledger: InMemoryLedger, *, mode: str = "changes", dry_run: bool = False, when: float = T0
) -> FileSync:
    session = SyncSession(
        ledger,
        HASHER,
        unique_key="id",
        mode=mode,
        full_every_days=7,
        dry_run=dry_run,  # type: ignore[arg-type]
        clock=lambda: T0,
        metrics_sink=_NoMetrics(),
    )
    return FileSync(session, source_time=when, origin="etag-1")


class _NoMetrics:
    def add_metric(self, **_: Any) -> None:
        pass


def _load(sync: FileSync, batch: Batch) -> None:
    plan = sync.plan(batch)
    sync.record(plan, list(plan.batch.lines) if plan.batch else [])


def test_an_inactive_sync_posts_the_batch_as_it_is_and_reads_nothing() -> None:
    ledger = InMemoryLedger()
    batch = _batch([{"id": "a", "v": 1}])
    plan = _file_sync(ledger, mode="all").plan(batch)
    assert plan.batch is batch and plan.skipped == 0 and ledger.lookups == []


def test_rows_already_in_the_ledger_are_dropped_from_the_batch() -> None:
    # Given a and b loaded
    ledger = InMemoryLedger()
    _load(_file_sync(ledger), _batch([{"id": "a", "v": 1}, {"id": "b", "v": 1}]))
    # When a batch holds a unchanged, b changed and c new
    plan = _file_sync(ledger, when=T0 + 60).plan(
        _batch([{"id": "a", "v": 1}, {"id": "b", "v": 2}, {"id": "c"}])
    )
    # Then only b and c are posted, a is skipped
    assert plan.batch is not None and plan.batch.rows == [{"id": "b", "v": 2}, {"id": "c"}]
    assert plan.batch.lines == [3, 4]
    assert plan.skipped == 1
    assert plan.counts == {"new": 1, "changed": 1, "unchanged": 1, "superseded": 0}


def test_a_key_twice_in_a_batch_decides_on_its_last_row_and_posts_both() -> None:
    # Given a in the ledger with v=2
    ledger = InMemoryLedger()
    _load(_file_sync(ledger), _batch([{"id": "a", "v": 2}]))
    # When a batch holds a=1 then a=2 (the last is what Monetate holds already)
    plan = _file_sync(ledger, when=T0 + 60).plan(_batch([{"id": "a", "v": 1}, {"id": "a", "v": 2}]))
    # Then both rows are skipped: Monetate ends with the last one anyway
    assert plan.batch is None and plan.skipped == 2
    # And when the last differs, both are posted in order and only the last is written
    plan = _file_sync(ledger, when=T0 + 60).plan(
        _batch([{"id": "a", "v": 2}, {"id": "a", "v": 3}], first_line=10)
    )
    assert plan.batch is not None and [r["v"] for r in plan.batch.rows] == [2, 3]
    assert list(plan.writes) == [11]


def test_only_the_posted_lines_are_written_to_the_ledger() -> None:
    ledger = InMemoryLedger()
    sync = _file_sync(ledger)
    plan = sync.plan(_batch([{"id": "a"}, {"id": "b"}]))
    sync.record(plan, [2])  # b was refused (400): it must be posted again next time
    again = _file_sync(ledger, when=T0 + 60).plan(_batch([{"id": "a"}, {"id": "b"}]))
    assert again.batch is not None and again.batch.rows == [{"id": "b"}]


def test_a_dry_run_classifies_but_writes_nothing() -> None:
    ledger = InMemoryLedger()
    _load(_file_sync(ledger, dry_run=True), _batch([{"id": "a"}]))
    assert ledger.entries == {}


def test_an_older_files_rows_are_superseded() -> None:
    ledger = InMemoryLedger()
    _load(_file_sync(ledger, when=T0 + 100), _batch([{"id": "a", "v": 2}]))
    plan = _file_sync(ledger, when=T0).plan(_batch([{"id": "a", "v": 1}]))
    assert plan.batch is None
    assert plan.counts == {"new": 0, "changed": 0, "unchanged": 1, "superseded": 1}


class _FailingOnPost:
    """A client whose POST number ``n`` (1-based) fails with a 5xx after its retries; the rest store."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0
        self.bodies: list[bytes] = []

    def post_body(self, schema: str, body: bytes, **_: Any) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise TransientApiError("Monetate answered HTTP 503", status=503)
        self.bodies.append(body)


def test_a_lookup_groups_kept_rows_are_posted_in_batches_and_a_failure_keeps_what_was_posted() -> None:
    # Given a lookup group of 10 new rows, POSTs of 4 rows, and Monetate failing the second POST
    ledger = InMemoryLedger()
    sync = _file_sync(ledger)
    client = _FailingOnPost(2)
    parked: list[PartialDeliveryError] = []
    done: list[Unit] = []

    def park(unit: Unit, exc: PartialDeliveryError) -> UnitOutcome:
        parked.append(exc)
        return UnitOutcome(posted=exc.result.posted, parked=sum(len(b) for b in exc.pending))

    scheduler = Scheduler(
        client,
        "customers",
        concurrency=1,
        done_beyond={},
        park=park,
        complete=done.append,
        tick=lambda: None,
        sync=sync,
        post_limits=(4, 1_000_000),
    )
    unit = Unit(0, rows=10, batch=_batch([{"id": f"r{i}"} for i in range(10)]))
    # When the unit is posted
    scheduler.submit(unit)
    scheduler.drain()
    scheduler.close()
    # Then the first 4 rows were stored and written to the ledger; the 6 others (the failed POST's
    # and the one after it) were parked, none lost
    assert len(client.bodies) == 1
    (exc,) = parked
    assert exc.result.posted == [2, 3, 4, 5]
    assert [line for b in exc.pending for line in b.lines] == [6, 7, 8, 9, 10, 11]
    assert done[0].outcome is not None and done[0].outcome.posted == [2, 3, 4, 5]
    assert done[0].outcome.parked == 6
    assert len(ledger.entries) == 4
