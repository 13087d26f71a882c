"""PostRecords' outcome matrix with fakes: each message's fate, merging, mapping back, idempotency, 403."""

from __future__ import annotations

import pytest
from monetate_ingest.delivery.envelope import parse_envelope
from monetate_ingest.monetate.exceptions import (
    KeyRevokedError,
    RateLimitedError,
    TransientApiError,
)
from monetate_ingest.records.dead_letters import fits
from monetate_ingest.records.handler import process_messages

from tests.unit.records.fakes import World, env, purchase

# --- the outcome matrix, one case at a time -----------------------------------------------------


def test_posted_message_succeeds_and_is_recorded_as_done() -> None:
    # Given a valid one-row message
    w = World()
    # When the batch is processed
    out = w.run(env(purchase("p1")))
    # Then the row is stored, the message succeeds and its content is recorded as done
    assert out.failures == {} and out.results == {"m0": "posted"}
    assert w.monetate.stored == [("purchases", purchase("p1"))]
    assert list(w.claims.records.values()) == ["COMPLETED"]
    assert w.metric("MessagesPosted") == 1 and w.metric("RowsPosted", "purchases") == 1
    assert w.dlq.sent == []


@pytest.mark.parametrize(
    ("body", "error_type"),
    [
        ("this is not json {", "invalid_json"),
        ('["schema", "rows"]', "not_an_envelope"),
        ('{"rows": [{"a": 1}]}', "missing_schema"),
        ('{"schema": "purchases", "rows": []}', "empty_rows"),
        ('{"schema": "nope", "rows": [{"customer_id": "c"}]}', "unknown_schema"),
        ('{"schema": ".", "rows": [{"customer_id": "c"}]}', "invalid_schema"),
        ('{"schema": "..", "rows": [{"customer_id": "c"}]}', "invalid_schema"),
        ('{"schema": "a/b", "rows": [{"customer_id": "c"}]}', "invalid_schema"),
        ('{"schema": "purchases", "rows": [{"a": ' + "[" * 100_000 + "]" * 100_000 + "}]}", "invalid_json"),
        ('{"schema": "purchases", "rows": [{"customer_id": ' + "[" * 40 + "]" * 40 + "}]}", "invalid_rows"),
    ],
    ids=lambda v: v[:40] if isinstance(v, str) else v,
)
def test_permanent_message_goes_to_the_dlq_byte_for_byte_and_succeeds(body: str, error_type: str) -> None:
    # Given a message that can never succeed
    w = World()
    # When processed
    out = w.run(body)
    # Then the original body goes to the DLQ with the reason, and the message is not retried
    assert out.failures == {} and out.results == {"m0": "dead_lettered"}
    [letter] = w.dlq.sent
    assert letter.body == body and letter.error_type == error_type and letter.error_message
    assert w.monetate.posts == [] and w.claims.records == {}
    assert w.metric("MessagesDeadLettered") == 1


def test_every_row_invalid_dead_letters_the_original_body_naming_rows_and_fields() -> None:
    # Given a message whose rows all fail coercion
    w = World()
    body = env(purchase("p1", price="cheap"), {"purchase_id": "p2", "price": 1})
    # When processed
    out = w.run(body)
    # Then nothing is posted and the whole original body is dead-lettered with readable reasons
    assert out.results == {"m0": "dead_lettered"} and w.monetate.posts == []
    letter = w.dlq.by_id("m0")
    assert letter.body == body and letter.error_type == "rows_rejected"
    assert "rows[0] field 'price'" in letter.error_message
    assert "rows[1] field 'customer_id'" in letter.error_message
    assert w.claims.records == {}  # a redrive after a fix is processed again


def test_rows_monetate_refuses_are_found_by_bisecting_the_merged_batch() -> None:
    # Given three one-row messages merged into one POST, the middle one refused by Monetate
    w = World()
    bodies = [env(purchase("p1")), env(purchase("p2", customer="refuse-me")), env(purchase("p3"))]
    # When processed
    out = w.run(*bodies)
    # Then bisection stores the good rows, and only the refused message is dead-lettered, whole
    assert out.failures == {}
    assert out.results == {"m0": "posted", "m1": "dead_lettered", "m2": "posted"}
    assert [r["purchase_id"] for _, r in w.monetate.stored] == ["p1", "p3"]
    letter = w.dlq.by_id("m1")
    assert letter.body == bodies[1] and letter.error_type == "rows_rejected"
    assert "customer is blocked" in letter.error_message
    assert len(w.monetate.posts) > 1  # the merged POST and its halves


def test_some_rows_valid_posts_them_and_dead_letters_only_the_refused_rows() -> None:
    # Given a parked message (IngestFile's shape) with a coercion failure and a Monetate refusal
    w = World()
    source = {"bucket": "b", "key": "incoming/purchases/f.csv", "lines": [2, 3, 4, 5]}
    rows = [purchase("p1"), purchase("p2", price="abc"), purchase("p3", customer="refuse-x"), purchase("p4")]
    # When processed
    out = w.run(env(*rows, source=source))
    # Then the valid rows are stored, the message succeeds and is recorded as done
    assert out.results == {"m0": "posted_partly"} and out.failures == {}
    assert [r["purchase_id"] for _, r in w.monetate.stored] == ["p1", "p4"]
    assert list(w.claims.records.values()) == ["COMPLETED"]
    # And the DLQ gets an envelope of just the refused rows (raw), their lines, and the reasons
    letter = w.dlq.by_id("m0")
    dead = parse_envelope(letter.body)
    assert dead.rows == [rows[1], rows[2]]
    assert dead.source == {**source, "lines": [3, 4]}
    assert letter.error_type == "rows_rejected"
    assert "2 of 4 rows were refused (2 posted)" in letter.error_message
    assert (
        "rows[1] field 'price'" in letter.error_message
        and "rows[2]: Monetate refused" in letter.error_message
    )
    assert w.metric("RowsRejected", "purchases") == 2 and w.metric("RowsPosted", "purchases") == 2


@pytest.mark.parametrize(
    "error",
    [
        TransientApiError("503 after 4 retries", status=503),
        RateLimitedError("429 after 4 retries", status=429, retry_after=1.0),
    ],
)
def test_transient_failure_after_retries_reports_the_message_for_retry(error: Exception) -> None:
    # Given Monetate failing transiently (the client already retried)
    w = World()
    w.monetate.fail_from = (1, error)
    # When processed
    out = w.run(env(purchase("p1")))
    # Then the message is in batchItemFailures, nothing is dead-lettered and its claim is released
    assert list(out.failures) == ["m0"]
    assert w.dlq.sent == [] and w.claims.records == {}
    assert w.metric("MessagesRetried") == 1


def test_transient_schema_lookup_failure_retries_the_message() -> None:
    w = World()
    w.schemas.errors["purchases"] = TransientApiError("timeout")
    out = w.run(env(purchase("p1")))
    assert list(out.failures) == ["m0"] and w.dlq.sent == [] and w.monetate.posts == []


def test_a_second_payload_failing_the_same_way_stops_posting_and_retries_the_rest() -> None:
    # Given one row per POST and Monetate failing from the second POST on
    w = World(max_rows=1)
    w.monetate.fail_from = (2, TransientApiError("502", status=502))
    # When four messages are processed
    out = w.run(env(purchase("p1")), env(purchase("p2")), env(purchase("p3")), env(purchase("p4")))
    # Then the first is done; the second payload's failure is tried once more on another message's
    # rows, which fail the same way: Monetate is down, posting stops, the rest is retried
    assert out.results == {"m0": "posted"} and sorted(out.failures) == ["m1", "m2", "m3"]
    assert len(w.monetate.posts) == 3
    assert "Monetate itself is failing" in out.failures["m3"]
    assert sorted(w.claims.records.values()) == ["COMPLETED"]


def test_key_revoked_fails_every_message_and_stops_calling_monetate() -> None:
    # Given a 403 on the first POST, and two schemas (two POSTs would be needed)
    w = World()
    w.monetate.fail_on[1] = KeyRevokedError("403 key revoked", status=403)
    bodies = [
        env(purchase("p1")),
        env({"customer_id": "v1"}, schema="visits"),
        "not json",
        env(purchase("p2", price="x")),
    ]
    # When processed
    out = w.run(*bodies)
    # Then every message fails, nothing is dead-lettered, no second POST, and KeyRevoked is counted
    assert sorted(out.failures) == ["m0", "m1", "m2", "m3"] and out.revoked
    assert len(w.monetate.posts) == 1 and w.dlq.sent == []
    assert w.metric("KeyRevoked") == 1
    assert w.claims.records == {}


def test_key_revoked_during_schema_lookup_makes_no_post() -> None:
    w = World()
    w.schemas.errors["purchases"] = KeyRevokedError("403", status=403)
    out = w.run(env(purchase("p1")), env({"customer_id": "v1"}, schema="visits"))
    assert sorted(out.failures) == ["m0", "m1"]
    assert w.monetate.posts == [] and w.schemas.lookups == ["purchases"]


def test_key_revoked_after_a_message_was_fully_posted_records_it_so_redelivery_skips_it() -> None:
    # Given one row per POST and a 403 on the second POST
    w = World(max_rows=1)
    w.monetate.fail_on[2] = KeyRevokedError("403", status=403)
    first = env(purchase("p1"))
    # When processed
    out = w.run(first, env(purchase("p2")))
    # Then both fail (the contract) but the first's content is recorded: its redelivery posts nothing
    assert sorted(out.failures) == ["m0", "m1"]
    w.monetate.fail_on.clear()
    again = w.run(first)
    assert again.results == {"m0": "duplicate"} and len(w.monetate.posts) == 2


# --- mixed, merging, mapping back ---------------------------------------------------------------


def test_a_mixed_batch_gets_each_outcome_right() -> None:
    # Given one batch holding every kind of message
    w = World()
    w.schemas.errors["visits"] = TransientApiError("schema endpoint timed out")
    bodies = {
        "good": env(purchase("p1")),
        "not_json": "{{",
        "not_envelope": '{"hello": "world"}',
        "unknown": env({"customer_id": "x"}, schema="ghosts"),
        "all_invalid": env(purchase("p2", price="NaN-ish")),
        "refused": env(purchase("p3", customer="refuse-1")),
        "partial": env(purchase("p4"), purchase("p5", price="?")),
        "transient": env({"customer_id": "v1"}, schema="visits"),
    }
    # When processed together
    out = process_messages(list(bodies.items()), w.deps)
    # Then each message has its own fate
    assert out.results == {
        "good": "posted",
        "not_json": "dead_lettered",
        "not_envelope": "dead_lettered",
        "unknown": "dead_lettered",
        "all_invalid": "dead_lettered",
        "refused": "dead_lettered",
        "partial": "posted_partly",
    }
    assert list(out.failures) == ["transient"]
    types = {letter.message_id: letter.error_type for letter in w.dlq.sent}
    assert types == {
        "not_json": "invalid_json",
        "not_envelope": "not_an_envelope",
        "unknown": "unknown_schema",
        "all_invalid": "rows_rejected",
        "refused": "rows_rejected",
        "partial": "rows_rejected",
    }
    assert sorted(r["purchase_id"] for _, r in w.monetate.stored) == ["p1", "p4"]


def test_one_row_messages_are_merged_into_ceil_n_over_max_rows_posts_and_mapped_back() -> None:
    # Given 23 one-row messages and at most 10 rows per POST
    w = World(max_rows=10)
    bodies = [env(purchase(f"p{i}")) for i in range(23)]
    # When processed
    out = w.run(*bodies)
    # Then 3 POSTs carry all rows, in order, and every message succeeds
    assert len(w.monetate.posts) == 3
    assert [r["purchase_id"] for _, r in w.monetate.stored] == [f"p{i}" for i in range(23)]
    assert out.results == {f"m{i}": "posted" for i in range(23)} and out.posts == 3


def test_rows_of_different_schemas_go_in_separate_posts() -> None:
    w = World()
    w.run(env(purchase("p1")), env({"customer_id": "v"}, schema="visits"), env(purchase("p2")))
    assert [(s, len(rows)) for s, rows in w.monetate.posts] == [("purchases", 2), ("visits", 1)]


# --- the DLQ must not lose anything ---------------------------------------------------------------


def test_dlq_send_failure_reports_the_message_as_failed() -> None:
    # Given an unreachable DLQ
    w = World()
    w.dlq.fail = True
    # When a poison message and a partly-valid message are processed
    out = w.run("not json", env(purchase("p1"), purchase("p2", price="x")))
    # Then both are left for SQS to retry, and the partial one is not recorded as done
    assert sorted(out.failures) == ["m0", "m1"]
    assert w.claims.records == {}


def test_many_refused_rows_are_all_dead_lettered_and_their_reasons_cut_with_a_count() -> None:
    # Given a message of 2,000 rows, 1,999 of them refused, ~240 KB of refused rows
    w = World()
    rows = [purchase("p0")] + [purchase(f"p{i}", price="bad" * 20) for i in range(1, 2000)]
    # When processed
    out = w.run(env(*rows))
    # Then the valid row is posted and every refused row is in a dead letter, each within SQS's limit
    assert out.results == {"m0": "posted_partly"}
    letters = [letter for letter in w.dlq.sent if letter.message_id == "m0"]
    dead = [r for letter in letters for r in parse_envelope(letter.body).rows]
    assert dead == rows[1:]
    assert all(fits(letter) for letter in letters)
    # And each reason is capped, saying how many rows it left out
    assert all(len(letter.error_message) <= 8_000 for letter in letters)
    assert "more rows left out" in letters[0].error_message
