"""The in-memory ledger's operator API matches the DynamoDB ledger's: status and forget by scope."""

from __future__ import annotations

from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.ledger import LedgerStatus
from monetate_ingest.sync.memory import InMemoryLedger


def entry(key_id: str, posted_at: float) -> LedgerEntry:
    return LedgerEntry(key_id, b"f" * 16, posted_at, SourceTime(900.0, "etag", 2))


def test_status_and_forget_see_only_their_scope() -> None:
    # Given entries of two schemas, one of whose scopes is a prefix of the other's text
    led = InMemoryLedger()
    led.record([entry("abc.k1", 1000.0), entry("abc.k2", 3000.0), entry("abcd.k1", 5.0)], 7)
    # When the status of one is read / Then only its entries count
    assert led.status("abc") == LedgerStatus(2, 1000.0, 3000.0)
    # When it is forgotten / Then its entries are gone, the other's kept
    assert led.forget("abc") == 2
    assert led.status("abc") == LedgerStatus(0, None, None)
    assert led.status("abcd") == LedgerStatus(1, 5.0, 5.0) and "abcd.k1" in led.expirations


def test_ledger_status_of_a_stream_of_posting_times() -> None:
    assert LedgerStatus.of(iter([3.0, 1.0, 2.0])) == LedgerStatus(3, 1.0, 3.0)
    assert LedgerStatus.of([]) == LedgerStatus()
