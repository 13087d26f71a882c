"""PostRecords with change-only sync: only what Monetate accepted is recorded, the ledger never
fails a message, and nothing is compared without a unique key or with ``SYNC_MODE=all``."""

from __future__ import annotations

from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.sync.entries import SourceTime
from monetate_ingest.sync.memory import InMemoryLedger

from tests.unit.records.fakes import env, purchase
from tests.unit.records.sync_fakes import T0, RaisingLedger, Synced, UnwritableLedger
from tests.unit.sync.test_session import BrokenLedger

# --- only what Monetate accepted is recorded --------------------------------------------------------


def test_a_row_refused_with_400_is_not_recorded_and_is_posted_again() -> None:
    # Given a message whose p2 Monetate refuses (400)
    s = Synced()
    body = env(purchase("p1"), purchase("p2", customer="refused"))
    first = s.run(body, sent=T0)
    assert first.results == {"b0m0": "posted_partly"} and len(s.entries()) == 1
    # When the same rows come again
    s.w.claims.records.clear()
    out = s.run(body, sent=T0 + 60)
    # Then p1 is unchanged and p2 is posted again (and refused again)
    assert s.posted_ids() == ["p2"]
    assert out.results == {"b1m0": "posted_partly"}
    assert [letter.error_type for letter in s.w.dlq.sent] == ["rows_rejected", "rows_rejected"]
    assert len(s.entries()) == 1


def test_a_message_whose_only_new_row_is_refused_keeps_its_unchanged_rows_out_of_the_dlq() -> None:
    # Given p1 posted
    s = Synced()
    s.run(env(purchase("p1")), sent=T0)
    # When p1 comes again with a new p2 that Monetate refuses
    out = s.run(env(purchase("p1"), purchase("p2", customer="refused")), sent=T0 + 60)
    # Then the message is posted partly: only p2 is dead-lettered
    assert out.results == {"b1m0": "posted_partly"}
    [letter] = s.w.dlq.sent
    assert '"p1"' not in letter.body and '"p2"' in letter.body


def test_rows_posted_before_a_revoked_key_are_recorded() -> None:
    # Given one row per POST and a 403 on the second POST
    s = Synced(max_rows=1)
    s.w.monetate.fail_on[2] = KeyRevokedError("403", status=403)
    # When a batch of two messages is handled
    out = s.run(env(purchase("p1")), env(purchase("p2")), sent=T0)
    # Then both are retried, and the row Monetate accepted is in the ledger (not posted again)
    assert sorted(out.failures) == ["b0m0", "b0m1"]
    assert [e.source for e in s.entries()] == [SourceTime(T0, "b0m0", 0)]


# --- the ledger never fails a message ---------------------------------------------------------------


def test_a_failing_ledger_lookup_posts_every_row() -> None:
    # Given the ledger table is unreachable
    s = Synced(BrokenLedger())
    # When a message comes
    out = s.run(env(purchase("p1"), purchase("p2")), sent=T0)
    # Then its rows are posted (fail open) and the failure is metered
    assert out.results == {"b0m0": "posted"} and s.posted_ids() == ["p1", "p2"]
    assert s.ledger_metrics.seen["SyncLedgerLookupFailed"] == 2


def test_a_failing_ledger_write_does_not_fail_the_message() -> None:
    # Given a ledger that reads but cannot be written
    s = Synced(UnwritableLedger())
    # When a message is posted twice
    first = s.run(env(purchase("p1")), sent=T0)
    s.w.claims.records.clear()
    second = s.run(env(purchase("p1")), sent=T0 + 60)
    # Then both succeed, the failures are metered, and the row is posted again (nothing recorded)
    assert first.results == {"b0m0": "posted"} and second.results == {"b1m0": "posted"}
    assert s.posted_ids() == ["p1"]
    assert s.ledger_metrics.seen["SyncLedgerWriteFailed"] == 2


def test_a_ledger_that_raises_posts_every_row_and_fails_nothing() -> None:
    s = Synced(RaisingLedger())
    out = s.run(env(purchase("p1")), sent=T0)
    assert out.results == {"b0m0": "posted"} and s.posted_ids() == ["p1"]


def test_a_hashing_key_that_cannot_be_read_posts_every_row() -> None:
    # Given the ledger's hashing key cannot be derived (the secret could not be read)
    s = Synced()

    def unreadable() -> bytes:
        raise ConnectionError("Secrets Manager unreachable")

    s.w.deps.sync.secret = unreadable
    # When a message comes, then its rows are posted and nothing is recorded
    out = s.run(env(purchase("p1")), sent=T0)
    assert out.results == {"b0m0": "posted"} and s.posted_ids() == ["p1"] and s.entries() == []


# --- when nothing is compared -----------------------------------------------------------------------


def test_a_schema_without_a_unique_key_posts_everything_and_looks_nothing_up() -> None:
    s = Synced()
    body = env({"customer_id": "c1"}, schema="visits")
    s.run(body, sent=T0)
    s.w.claims.records.clear()
    out = s.run(body, sent=T0 + 60)
    assert out.results == {"b1m0": "posted"} and s.posted_ids("customer_id") == ["c1"]
    assert isinstance(s.ledger, InMemoryLedger) and s.ledger.lookups == [] and s.entries() == []


def test_sync_mode_all_posts_everything_and_looks_nothing_up() -> None:
    s = Synced(mode="all")
    body = env(purchase("p1"))
    s.run(body, sent=T0)
    s.w.claims.records.clear()
    out = s.run(body, sent=T0 + 60)
    assert out.results == {"b1m0": "posted"} and s.posted_ids() == ["p1"]
    assert isinstance(s.ledger, InMemoryLedger) and s.ledger.lookups == [] and s.entries() == []
    assert s.w.metric("RowsUnchanged", "purchases") == 0
