"""One source's change-only sync against the in-memory ledger: classify, post, record."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from monetate_ingest.sync.decide import DAY, Decision
from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.fingerprint import LedgerHasher
from monetate_ingest.sync.ledger import Lookup, WriteOutcome
from monetate_ingest.sync.memory import InMemoryLedger
from monetate_ingest.sync.session import SyncSession

HASHER = LedgerHasher(b"s" * 32, "acme", "production", "customers")
T0 = 1_714_600_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Metrics:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.seen[name] = self.seen.get(name, 0) + value


class BrokenLedger:
    """A ledger whose store is down: every key fails to read, every write fails."""

    def lookup(self, key_ids: Collection[str]) -> Lookup:
        return Lookup({}, failed=len(set(key_ids)))

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        return WriteOutcome(failed=len(entries))


def session(ledger: Any, clock: Clock, metrics: Metrics | None = None, **kw: Any) -> SyncSession:
    return SyncSession(
        ledger, HASHER, unique_key="email", mode=kw.pop("mode", "changes"), full_every_days=7,
        clock=clock, metrics_sink=metrics or Metrics(), **kw,
    )  # fmt: skip


ROWS = [{"email": f"c{i}@x.io", "spend": i} for i in range(5)]


def load(
    s: SyncSession, rows: list[dict[str, Any]], source_time: float, *, accept: bool = True
) -> list[Decision]:
    """What a writer does: classify, post the rows that post, record them after the 201."""
    sync_rows = [s.row(r, SourceTime(source_time, f"etag-{source_time}", i + 2)) for i, r in enumerate(rows)]
    decisions = s.classify(sync_rows)
    if accept:
        s.posted([r for r, d in zip(sync_rows, decisions, strict=True) if d.posts])
    return decisions


def test_a_failing_ledger_posts_every_row_and_says_so() -> None:
    # Given the ledger table is missing or failing
    metrics, clock = Metrics(), Clock()
    s = session(BrokenLedger(), clock, metrics)
    # When a file is loaded
    decisions = load(s, ROWS, T0)
    # Then every row is posted (fail open), and the failures are counted and metered
    assert decisions == [Decision.NEW] * 5
    assert s.lookup_failed == 5 and s.writes.failed == 5
    assert metrics.seen["SyncLedgerLookupFailed"] == 5 and metrics.seen["SyncLedgerWriteFailed"] == 5


def test_rows_monetate_refused_are_never_marked_unchanged() -> None:
    # Given a first load whose POST was refused (400) or crashed before the ledger write
    ledger, clock = InMemoryLedger(), Clock()
    load(session(ledger, clock), ROWS, T0, accept=False)
    # When the same file is loaded again
    decisions = load(session(ledger, clock), ROWS, T0)
    # Then every row is posted again: nothing is lost
    assert decisions == [Decision.NEW] * 5


def test_the_same_file_twice_posts_nothing_the_second_time() -> None:
    ledger, clock = InMemoryLedger(), Clock()
    first = session(ledger, clock)
    load(first, ROWS, T0)
    clock.now += 3600
    second = session(ledger, clock)
    decisions = load(second, ROWS, T0 + 3600)
    assert decisions == [Decision.UNCHANGED] * 5
    assert second.counts.to_dict() == {
        "mode": "changes",
        "new": 0,
        "changed": 0,
        "unchanged": 5,
        "superseded": 0,
    }
    assert first.counts.new == 5 and first.writes.written == 5


def test_an_unchanged_row_does_not_refresh_its_post_so_full_every_days_reposts_it() -> None:
    ledger, clock = InMemoryLedger(), Clock()
    load(session(ledger, clock), ROWS, T0)
    for day in range(1, 8):  # nightly, unchanged
        clock.now = T0 + day * DAY
        decisions = load(session(ledger, clock), ROWS, clock.now)
    # On day 7 every record is posted again, and its entry expires 7 + 2 days after that post
    assert decisions == [Decision.CHANGED] * 5
    key = HASHER.key_id("c0@x.io")
    assert ledger.entries[key].posted_at == T0 + 7 * DAY
    assert ledger.expirations[key] == int(T0 + 16 * DAY)


def test_changed_and_new_rows_are_posted_and_only_those() -> None:
    ledger, clock = InMemoryLedger(), Clock()
    load(session(ledger, clock), ROWS, T0)
    night2 = [dict(r) for r in ROWS] + [{"email": "new@x.io", "spend": 1}]
    night2[1]["spend"] = 99
    s = session(ledger, clock)
    decisions = load(s, night2, T0 + DAY)
    assert [d.value for d in decisions] == [
        "unchanged",
        "changed",
        "unchanged",
        "unchanged",
        "unchanged",
        "new",
    ]
    assert s.counts.unchanged + s.counts.new + s.counts.changed == len(night2)


def test_an_older_file_replayed_after_a_newer_one_changes_nothing() -> None:
    # Given Tuesday's file loaded, then Monday's (with other values) replayed
    ledger, clock = InMemoryLedger(), Clock()
    load(session(ledger, clock), [{**r, "spend": 2} for r in ROWS], T0 + DAY)
    s = session(ledger, clock)
    decisions = load(s, ROWS, T0)
    # Then none of Monday's rows is posted, and the ledger still holds Tuesday's
    assert decisions == [Decision.SUPERSEDED] * 5
    assert s.counts.superseded == 5 and s.counts.unchanged == 5
    assert {e.source.time for e in ledger.entries.values()} == {T0 + DAY}


def test_an_older_write_never_replaces_a_newer_entry() -> None:
    # Given a newer row recorded, then an older row of the same key (a late parked batch) recorded
    ledger, clock = InMemoryLedger(), Clock()
    s = session(ledger, clock)
    newer = s.row({"email": "a@x.io", "spend": 2}, SourceTime(T0 + DAY, "tue", 2))
    older = s.row({"email": "a@x.io", "spend": 1}, SourceTime(T0, "mon", 2))
    s.posted([newer])
    outcome = s.posted([older])
    # Then the entry keeps the newer one
    assert outcome == WriteOutcome(written=0, kept_newer=1, failed=0)
    assert ledger.entries[newer.key_id].fingerprint == newer.fingerprint
    # And within one call the later line of one file wins
    later = s.row({"email": "a@x.io", "spend": 3}, SourceTime(T0 + 2 * DAY, "wed", 9))
    earlier = s.row({"email": "a@x.io", "spend": 4}, SourceTime(T0 + 2 * DAY, "wed", 3))
    assert s.posted([later, earlier]) == WriteOutcome(written=1, kept_newer=1)
    assert ledger.entries[later.key_id].fingerprint == later.fingerprint


def test_a_dry_run_reports_what_would_happen_and_writes_nothing() -> None:
    ledger, clock = InMemoryLedger(), Clock()
    load(session(ledger, clock), ROWS[:2], T0)
    before = dict(ledger.entries)
    s = session(ledger, clock, dry_run=True)
    load(s, ROWS, T0 + DAY)
    assert s.counts.to_dict() == {"mode": "changes", "new": 3, "changed": 0, "unchanged": 2, "superseded": 0}
    assert ledger.entries == before


def test_sync_off_looks_nothing_up_counts_nothing_and_writes_nothing() -> None:
    ledger, clock = InMemoryLedger(), Clock()
    s = session(ledger, clock, mode="all")
    assert load(s, ROWS, T0) == [Decision.NEW] * 5
    assert ledger.lookups == [] and ledger.entries == {}
    assert s.counts.to_dict()["new"] == 0


def test_a_lookup_reads_each_key_once() -> None:
    ledger, clock = InMemoryLedger(), Clock()
    s = session(ledger, clock)
    rows = [s.row(ROWS[0], SourceTime(T0, "e", 2)), s.row(ROWS[0], SourceTime(T0, "e", 3))]
    s.classify(rows)
    assert ledger.lookups == [[rows[0].key_id]]
