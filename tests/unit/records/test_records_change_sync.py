"""PostRecords with change-only sync, on fakes and the in-memory ledger: what is skipped, and the
source time each row is recorded with (a parked envelope's file, else the message)."""

from __future__ import annotations

import pytest
from monetate_ingest.records.handler import make_handler
from monetate_ingest.sync.entries import SourceTime
from monetate_ingest.sync.memory import InMemoryLedger

from tests.unit.records.fakes import env, purchase
from tests.unit.records.sync_fakes import T0, Synced, parked
from tests.unit.records.test_records_handler import sqs_event

# --- what is skipped --------------------------------------------------------------------------------


def test_the_same_rows_delivered_again_post_nothing_and_end_posted() -> None:
    # Given a message posted once, and its idempotency record gone (expired)
    s = Synced()
    body = env(purchase("p1"), purchase("p2"))
    s.run(body, sent=T0)
    s.w.claims.records.clear()
    # When the same content comes again
    out = s.run(body, sent=T0 + 60)
    # Then nothing is posted, the message ends posted and its rows count as unchanged
    assert out.results == {"b1m0": "posted"} and out.failures == {}
    assert s.w.monetate.posts == [] and out.posts == 0
    assert s.w.metric("RowsUnchanged", "purchases") == 2
    assert list(s.w.claims.records.values()) == ["COMPLETED"]


def test_a_changed_row_is_posted_and_its_unchanged_neighbour_skipped() -> None:
    # Given two rows posted
    s = Synced()
    s.run(env(purchase("p1"), purchase("p2")), sent=T0)
    # When a feed sends both again, p2 with a new price
    out = s.run(env(purchase("p1"), purchase("p2", price=12)), sent=T0 + 60)
    # Then only p2 is posted; the message is posted whole
    assert out.results == {"b1m0": "posted"}
    assert s.posted_ids() == ["p2"]
    assert s.w.metric("RowsPosted", "purchases") == 3 and s.w.metric("RowsUnchanged", "purchases") == 1


def test_values_spelled_differently_are_unchanged() -> None:
    # Given a subscriber posted with credit 1000 and opted_in true
    s = Synced()
    s.run(env({"email": "a@x.io", "credit": 1000, "opted_in": True}, schema="subscribers"), sent=T0)
    # When re-sent as "1e3" and "yes", with the fields in another order
    again = env({"opted_in": "yes", "credit": "1e3", "email": "a@x.io"}, schema="subscribers")
    out = s.run(again, sent=T0 + 60)
    # Then it is the same row: nothing posted
    assert out.results == {"b1m0": "posted"} and s.w.monetate.posts == []
    assert s.w.metric("RowsUnchanged", "subscribers") == 1


def test_a_late_message_is_superseded_and_not_posted() -> None:
    # Given p1 posted from a message sent at T0
    s = Synced()
    s.run(env(purchase("p1", price=2)), sent=T0)
    # When a message sent earlier (T0 - 30) arrives late with p1's older price
    out = s.run(env(purchase("p1", price=1)), sent=T0 - 30)
    # Then it is not posted over the newer data; the message ends posted, counted unchanged
    assert out.results == {"b1m0": "posted"} and s.w.monetate.posts == []
    assert s.w.metric("RowsUnchanged", "purchases") == 1
    [entry] = s.entries()
    assert entry.source == SourceTime(T0, "b0m0", 0)


def test_a_key_several_times_in_a_batch_is_decided_on_its_newest_row() -> None:
    # Given one batch with p1 three times: sent at T0+10, T0+20 and (late) T0+5
    s = Synced()
    bodies = [env(purchase("p1", price=p)) for p in (1, 2, 3)]
    # When handled
    out = s.run(*bodies, sent=[T0 + 10, T0 + 20, T0 + 5])
    # Then the key is looked up once; the rows up to the newest are posted in order, the late
    # one after it is skipped (it would overwrite newer data); the ledger holds the newest
    assert out.results == {"b0m0": "posted", "b0m1": "posted", "b0m2": "posted"}
    assert [r["price"] for _, r in s.w.monetate.stored] == [1, 2]
    assert isinstance(s.ledger, InMemoryLedger) and [len(k) for k in s.ledger.lookups] == [1]
    [entry] = s.entries()
    assert entry.source == SourceTime(T0 + 20, "b0m1", 0)
    assert s.w.metric("RowsUnchanged", "purchases") == 1


def test_a_message_with_a_key_twice_posts_both_rows_in_order_and_records_the_last() -> None:
    # Given one message with p1 twice
    s = Synced()
    s.run(env(purchase("p1", price=1), purchase("p1", price=2)), sent=T0)
    # When the last state comes again
    out = s.run(env(purchase("p1", price=2)), sent=T0 + 60)
    # Then the first run posted both in order, the ledger holds the last, the second posts nothing
    assert [r["price"] for _, r in s.w.monetate.stored] == [1, 2]
    assert out.results == {"b1m0": "posted"} and s.w.monetate.posts == []


# --- parked envelopes keep their file's age ---------------------------------------------------------


def test_a_parked_envelopes_rows_are_recorded_with_their_files_time_and_lines() -> None:
    # Given rows IngestFile parked from a file last modified an hour ago (lines 2 and 3)
    s = Synced()
    body = parked(purchase("p1"), purchase("p2"), lines=[2, 3], time=T0 - 3600)
    # When PostRecords posts them (the message itself was sent now)
    out = s.run(body, sent=T0)
    # Then the ledger entries carry the file's time, ETag and each row's line
    assert out.results == {"b0m0": "posted"}
    assert sorted((e.source for e in s.entries()), key=lambda x: x.line) == [
        SourceTime(T0 - 3600, "e1", 2),
        SourceTime(T0 - 3600, "e1", 3),
    ]


def test_a_parked_older_row_is_not_posted_over_a_newer_one() -> None:
    # Given p1 posted by a real-time message at T0
    s = Synced()
    s.run(env(purchase("p1", price=5)), sent=T0)
    # When a parked envelope of a file from an hour earlier arrives with p1 (older price) and p9
    out = s.run(parked(purchase("p1", price=4), purchase("p9"), lines=[7, 8], time=T0 - 3600), sent=T0 + 5)
    # Then only p9 is posted; p1 keeps its newer data and entry
    assert out.results == {"b1m0": "posted"}
    assert s.posted_ids() == ["p9"]
    assert s.w.metric("RowsUnchanged", "purchases") == 1


def test_a_parked_envelope_without_time_uses_the_messages_sent_time() -> None:
    # Given a parked envelope written before IngestFile added the file's time
    s = Synced()
    # When it is posted
    s.run(parked(purchase("p1"), lines=[2], time=None), sent=T0 + 7)
    # Then its entry's source is the message: its sent time and id
    [entry] = s.entries()
    assert entry.source == SourceTime(T0 + 7, "b0m0", 0)


def test_a_message_without_a_sent_time_uses_the_current_time() -> None:
    s = Synced()
    s.run(env(purchase("p1")))
    [entry] = s.entries()
    assert entry.source == SourceTime(T0, "b0m0", 0)


@pytest.mark.filterwarnings("ignore:No application metrics")  # the fake sink records them
def test_the_handler_reads_the_sent_timestamp_of_each_record() -> None:
    # Given a record whose SQS SentTimestamp is T0 + 1.5 s (in milliseconds)
    s = Synced()
    event = sqs_event({"a": env(purchase("p1"))})
    event["Records"][0]["attributes"]["SentTimestamp"] = str(int((T0 + 1.5) * 1000))
    # When the handler processes it
    make_handler(s.w.deps)(event, None)
    # Then its row's entry is dated by it
    [entry] = s.entries()
    assert entry.source == SourceTime(T0 + 1.5, "a", 0)


def test_a_file_time_later_than_the_message_was_sent_is_not_believed() -> None:
    # Given an envelope whose source claims a file time in milliseconds (a producer's own field)
    s = Synced()
    # When it is posted
    s.run(parked(purchase("p1"), lines=[2], time=(T0 + 7) * 1000), sent=T0 + 7)
    # Then its rows are dated by the message, not a millennium ahead
    [entry] = s.entries()
    assert entry.source == SourceTime(T0 + 7, "b0m0", 0)
