"""Isolation: a merged POST Monetate keeps failing is split by message; an outage costs few POSTs."""

from __future__ import annotations

import math

from monetate_ingest.monetate.exceptions import RateLimitedError, TransientApiError

from tests.unit.records.fakes import World, env, holds, purchase

BAD_503 = TransientApiError(
    "POST /data/purchases/: Monetate answered HTTP 503 (after 5 attempts)", status=503
)


def mixed_batch() -> list[str]:
    """10 messages: 6 valid, 3 permanent failures, 1 whose rows always get 503 ("poison")."""
    return [
        env(purchase("p0")),
        "not json {",
        env(purchase("p1")),
        env(purchase("p2", customer="poison")),
        env(purchase("p3")),
        env({"customer_id": "x"}, schema="ghosts"),
        env(purchase("p4")),
        env(purchase("p5", price="twelve")),
        env(purchase("p6")),
        env(purchase("p7")),
    ]


def test_a_mixed_batch_lists_only_the_message_whose_own_rows_fail() -> None:
    # Given Monetate answering 503 to any POST holding the poison message's rows
    w = World()
    w.monetate.fail_when(holds("poison"), BAD_503)
    # When the mixed batch is processed (its 7 valid-looking messages merged into one POST)
    out = w.run(*mixed_batch())
    # Then batchItemFailures lists the poison message alone; the 6 valid ones are stored
    assert list(out.failures) == ["m3"] and "503" in out.failures["m3"]
    assert sorted(w.monetate.stored_ids()) == ["p0", "p1", "p3", "p4", "p6", "p7"]
    # And the 3 permanent failures are dead-lettered with their reasons
    assert w.dlq.types() == {"m1": "invalid_json", "m5": "unknown_schema", "m7": "rows_rejected"}
    # At a cost of: the merged POST, one POST of no rows (is Monetate up?), two halves per split
    assert w.monetate.posts[1] == ("purchases", [])
    assert len(w.monetate.posts) <= 1 + 1 + 2 * math.ceil(math.log2(7))


def test_an_all_503_outage_costs_at_most_one_extra_post_per_schema() -> None:
    # Given Monetate failing every POST
    w = World(max_rows=3)
    w.monetate.fail_from = (1, BAD_503)
    # When 8 purchases messages (3 merged POSTs) and 4 visits messages (2 POSTs) are processed
    bodies = [env(purchase(f"p{i}")) for i in range(8)] + [
        env({"customer_id": f"v{i}"}, schema="visits") for i in range(4)
    ]
    out = w.run(*bodies)
    # Then every message is retried, nothing dead-lettered, nothing stored
    assert sorted(out.failures) == sorted(f"m{i}" for i in range(12)) and w.dlq.sent == []
    # And the outage was found with no more than one POST per schema beyond the first merged one
    per_schema = {s: sum(1 for x, _ in w.monetate.posts if x == s) for s in ("purchases", "visits")}
    assert per_schema["purchases"] <= 2 and per_schema["visits"] <= 1
    assert all("Monetate" in reason for reason in out.failures.values())


def test_an_outage_in_a_single_merged_post_costs_one_post_of_no_rows() -> None:
    # Given Monetate failing every POST and one merged POST of 5 messages
    w = World()
    w.monetate.fail_from = (1, BAD_503)
    out = w.run(*(env(purchase(f"p{i}")) for i in range(5)))
    # Then the messages are retried after exactly two POSTs: the merged one and the probe
    assert len(out.failures) == 5
    assert [rows for _, rows in w.monetate.posts][1] == [] and len(w.monetate.posts) == 2
    assert "POST of no rows too" in out.failures["m0"]


def test_429_is_throttling_never_a_reason_to_split() -> None:
    # Given Monetate throttling (429 after the client's backed-off retries)
    w = World()
    w.monetate.fail_from = (1, RateLimitedError("429 Too Many Requests (after 5 attempts)", status=429))
    # When 5 purchases and 2 visits messages are processed
    bodies = [env(purchase(f"p{i}")) for i in range(5)] + [env({"customer_id": "v"}, schema="visits")] * 2
    out = w.run(*bodies)
    # Then one POST was made: no split, no probe, no other schema tried while throttled
    assert len(w.monetate.posts) == 1
    assert len(out.failures) == 7 and "throttling" in out.failures["m0"]


def test_two_schemas_a_bad_payload_in_one_does_not_keep_the_other_from_posting() -> None:
    # Given a poison message among purchases, and visits messages after them
    w = World()
    w.monetate.fail_when(holds("poison"), BAD_503)
    bodies = [
        env(purchase("p1")),
        env(purchase("p2", customer="poison")),
        env({"customer_id": "v1"}, schema="visits"),
    ]
    # When processed
    out = w.run(*bodies)
    # Then visits is tried once (and posted) before the purchases messages are split by message;
    # no probe is needed: visits' answer showed Monetate up
    assert list(out.failures) == ["m1"]
    assert out.results == {"m0": "posted", "m2": "posted"}
    assert [s for s, rows in w.monetate.posts] == ["purchases", "visits", "purchases", "purchases"]
    assert all(rows for _, rows in w.monetate.posts)


def test_one_bad_message_among_100_is_found_in_a_few_posts() -> None:
    # Given 100 one-row messages merged into one POST, one of them poisoned
    w = World()
    w.monetate.fail_when(holds("poison"), BAD_503)
    bodies = [env(purchase(f"p{i}", customer="poison" if i == 61 else "c1")) for i in range(100)]
    # When processed
    out = w.run(*bodies)
    # Then the 99 others are stored, the poisoned one alone retried, in about 2·log2(100) POSTs
    assert list(out.failures) == ["m61"] and len(w.monetate.stored) == 99
    assert len(w.monetate.posts) <= 1 + 1 + 2 * math.ceil(math.log2(100))


def test_two_bad_messages_are_both_retried_and_the_others_posted() -> None:
    # Given two poisoned messages that end in different halves (the POST of no rows still answers)
    w = World()
    w.monetate.fail_when(holds("poison"), BAD_503)
    bodies = [env(purchase(f"p{i}", customer="poison" if i in (1, 6) else "c1")) for i in range(8)]
    out = w.run(*bodies)
    assert sorted(out.failures) == ["m1", "m6"] and len(w.monetate.stored) == 6


def test_monetate_failing_again_while_splitting_stops_posting() -> None:
    # Given a poisoned message, and Monetate failing everything from the third POST on
    w = World()
    w.monetate.fail_when(holds("poison"), BAD_503)
    w.monetate.fail_from = (3, BAD_503)
    bodies = [env(purchase(f"p{i}", customer="poison" if i == 2 else "c1")) for i in range(8)]
    # When processed: the merged POST fails, the probe answers, both halves fail, the probe too
    out = w.run(*bodies)
    # Then posting stops there (no POST per message): everything is retried
    assert len(out.failures) == 8 and len(w.monetate.posts) == 5
    assert [rows for _, rows in w.monetate.posts][4] == []
    assert "Monetate itself is failing" in out.failures["m7"]


def test_a_message_s_rows_keep_their_order_across_batches_and_isolation() -> None:
    # Given 2 rows per POST, a three-row message after a poison message in the same first POST
    w = World(max_rows=2)
    w.monetate.fail_when(holds("poison"), BAD_503)
    out = w.run(env(purchase("x", customer="poison")), env(purchase("a"), purchase("b"), purchase("c")))
    # Then the message's rows are stored in its order (held with the failed POST, then posted again)
    assert w.monetate.stored_ids() == ["a", "b", "c"]
    assert out.results == {"m1": "posted"} and list(out.failures) == ["m0"]


def test_a_transient_failure_of_one_message_alone_is_that_message_s_failure() -> None:
    # Given one message per POST and the second one's rows always failing
    w = World(max_rows=1)
    w.monetate.fail_when(holds("poison"), BAD_503)
    out = w.run(env(purchase("p1")), env(purchase("p2", customer="poison")), env(purchase("p3")))
    # Then no split or probe is needed: that message is retried and the others are posted
    assert list(out.failures) == ["m1"] and len(w.monetate.posts) == 3
    assert w.monetate.stored_ids() == ["p1", "p3"]
