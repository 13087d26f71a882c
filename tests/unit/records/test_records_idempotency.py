"""PostRecords' idempotency: the same content is posted once, whatever its message id."""

from __future__ import annotations

from monetate_ingest.delivery.envelope import parse_envelope
from monetate_ingest.records.handler import process_messages

from tests.unit.records.fakes import FakeClaims, World, env, purchase


def test_a_redelivered_message_with_a_new_id_is_not_posted_again() -> None:
    # Given a message that was posted
    w = World()
    body = env(purchase("p1"))
    w.run(body)
    # When the same content arrives again under another message id
    out = process_messages([("other-id", body)], w.deps)
    # Then nothing is posted and the message succeeds
    assert out.results == {"other-id": "duplicate"} and len(w.monetate.posts) == 1
    assert w.metric("MessagesDuplicate") == 1


def test_identical_messages_in_one_batch_are_posted_once() -> None:
    w = World()
    body = env(purchase("p1"))
    out = w.run(body, body)
    assert out.failures == {} and len(w.monetate.stored) == 1
    assert out.results == {"m0": "posted", "m1": "duplicate"}


def test_identical_bad_messages_in_one_batch_give_one_dead_letter() -> None:
    w = World()
    body = env(purchase("p1", price="x"))
    out = w.run(body, body)
    assert out.failures == {} and len(w.dlq.sent) == 1


def test_content_held_by_another_invocation_is_retried() -> None:
    w = World()
    body = env(purchase("p1"))
    w.claims.records[FakeClaims.key(parse_envelope(body).identity())] = "INPROGRESS"
    out = w.run(body)
    assert list(out.failures) == ["m0"] and w.monetate.posts == []


def test_different_source_is_different_content() -> None:
    w = World()
    w.run(env(purchase("p1"), source={"request": "a"}))
    out = w.run(env(purchase("p1"), source={"request": "b"}))
    assert out.results == {"m0": "posted"} and len(w.monetate.posts) == 2
