"""The fault matrix: every AWS and Monetate call PostRecords makes, failing in turn.

Each case handles the same batch — a valid message, a partly valid one, one that is not JSON — with
one call failing, and checks what a user would: every message has exactly one outcome (stored, in
the DLQ with its reason, or listed for retry), and once the fault is gone, redelivering the retried
ones leaves every valid row stored and every invalid one in the DLQ. Nothing is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from local.aws import MotoServer
from local.sandbox import MonetateSandbox
from local.sqs_poller import FakeLambdaContext
from tests.functional.post_records.harness import Stack, env, failed, letter_types, make_stack, purchase

GOOD = env(purchase("g1"))
PARTLY = env(purchase("q1"), purchase("q2", price="not a number"))
POISON = "this is not json"
BATCH = (GOOD, PARTLY, POISON)


@dataclass(frozen=True)
class Fault:
    """One failing call: how to build the stack, how to warm it, how to break it and heal it."""

    name: str
    failing: dict[str, tuple[str, ...]] | None = None
    warm: bool = True
    sandbox: dict[str, Any] | None = None
    env_vars: dict[str, str] | None = None
    #: the outcome the user sees for (GOOD, PARTLY, POISON) while the fault lasts
    expected: tuple[str, str, str] = ("stored", "partly", "dead")


FAULTS = [
    Fault("sqs send to the DLQ", failing={"sqs": ("send_message",)},
          expected=("stored", "retried", "retried")),
    Fault("dynamodb put (claim)", failing={"dynamodb": ("put_item",)},
          expected=("retried", "retried", "dead")),
    Fault("dynamodb update (done)", failing={"dynamodb": ("update_item",)}),
    Fault("monetate token mint", warm=False, sandbox={"error_rate": 1.0, "apply_to": "auth"},
          expected=("retried", "retried", "dead")),
    Fault("monetate schema GET", warm=False, sandbox={"error_rate": 1.0, "apply_to": "data"},
          expected=("retried", "retried", "dead")),
    Fault("monetate POST error status", sandbox={"error_rate": 1.0, "apply_to": "post"},
          expected=("retried", "retried", "dead")),
    Fault("monetate POST timeout", sandbox={"latency": 1.0, "apply_to": "post"},
          env_vars={"HTTP_READ_TIMEOUT": "0.2"}, expected=("retried", "retried", "dead")),
]  # fmt: skip


def outcome(mid: str, response: dict[str, Any], letters: dict[str, str], stored: set[str]) -> str:
    """What the user sees for one message: listed for retry (rows stored before the failure are
    posted again then), dead-lettered, stored, or partly stored with the rest dead-lettered."""
    retried = mid in failed(response)
    assert not (retried and mid in letters), f"message {mid} is both retried and dead-lettered"
    if retried:
        return "retried"
    if mid in letters:
        return "partly" if letters[mid] == "rows_rejected" and stored else "dead"
    assert stored, f"message {mid} has no outcome: not retried, not dead-lettered, not stored"
    return "stored"


def rows_of(stack: Stack) -> set[str]:
    return {r["purchase_id"] for r in stack.sandbox.rows("purchases")}


def stored_for(body: str, rows: set[str]) -> set[str]:
    return {pid for pid in ("g1", "q1") if f'"{pid}"' in body} & rows


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_each_call_failing_in_turn_leaves_an_outcome_per_message_and_loses_nothing(
    fault: Fault, moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given PostRecords with one call failing
    stack = make_stack(moto, sandbox, secret_text, failing=fault.failing, env_vars=fault.env_vars)
    if fault.warm:
        stack.handler(stack.event(env(purchase("warm"))), FakeLambdaContext())  # token, schema cached
    for key, value in (fault.sandbox or {}).items():
        setattr(sandbox.faults, key, value)
    # When the batch is handled
    event = stack.event(*BATCH)
    ids = [r["messageId"] for r in event["Records"]]
    response = stack.handler(event, FakeLambdaContext())
    # Then every message has exactly one outcome, the one a user expects for this fault
    letters = letter_types(stack.dead_letters())
    rows = rows_of(stack)
    seen = tuple(
        outcome(mid, response, letters, stored_for(body, rows)) for mid, body in zip(ids, BATCH, strict=True)
    )
    assert seen == fault.expected
    # (the failing call was made: the case tests what it says)
    for service, operations in (fault.failing or {}).items():
        assert all(stack.clients[service].calls[op] >= 1 for op in operations)
    if fault.sandbox is not None and "latency" in fault.sandbox:
        assert stack.deps.client.stats["retries"] >= 1  # type: ignore[attr-defined]  # read timeouts
    elif fault.sandbox is not None:
        assert sandbox.counts["faults"] >= 1
    # And once the fault is gone, redelivering what was retried loses nothing
    for client in stack.clients.values():
        client.failing.clear()
    sandbox.faults.error_rate = sandbox.faults.latency = 0.0
    if any(o == "retried" for o in seen):
        _, again = stack.redeliver(event, response)
        assert failed(again) == []
    assert {"g1", "q1"} <= rows_of(stack) and "q2" not in rows_of(stack)
    letters |= letter_types(stack.dead_letters())
    assert letters == {ids[1]: "rows_rejected", ids[2]: "invalid_json"}


def test_a_claim_read_failing_when_the_content_was_posted_before_retries_it_and_never_posts_it_twice(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given content posted once, and a table read (GetItem) failing for the next claim of it
    stack = make_stack(moto, sandbox, secret_text, without_old_item=True)
    first, _ = stack.invoke(GOOD)
    assert failed(first) == []
    posts = stack.posts()
    stack.clients["dynamodb"].failing.add("get_item")
    # When the same content arrives again
    response, ids = stack.invoke(GOOD)
    # Then the read was attempted and failed: the message is retried, not posted again
    assert stack.clients["dynamodb"].calls["get_item"] >= 1
    assert failed(response) == ids and stack.posts() == posts
    # And with the table back it is recognised as a duplicate
    stack.clients["dynamodb"].failing.clear()
    again, _ = stack.invoke(GOOD)
    assert failed(again) == [] and stack.posts() == posts


def test_a_release_that_fails_leaves_a_claim_that_frees_itself_with_the_invocation(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given Monetate failing every POST, and the claim's release (DeleteItem) failing too
    stack = make_stack(moto, sandbox, secret_text, failing={"dynamodb": ("delete_item",)})
    stack.handler(stack.event(env(purchase("warm"))), FakeLambdaContext())
    sandbox.faults.error_rate, sandbox.faults.apply_to = 1.0, "post"
    # When a message is handled within a 60 s invocation
    started = time.time()
    response, ids = stack.invoke(GOOD)
    # Then it is retried, and its claim expires by the invocation's own deadline (no redelivery is
    # blocked for longer than the visibility timeout)
    assert failed(response) == ids
    held = [i for i in stack.claims_table() if i["status"]["S"] == "INPROGRESS"]
    assert len(held) == 1 and int(held[0]["in_progress_expiration"]["N"]) / 1000 <= started + 61


def test_the_queue_s_receive_limit_unreadable_leaves_a_last_receive_failure_to_sqs(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given GetQueueAttributes failing and Monetate down, on a message's 5th receive
    stack = make_stack(moto, sandbox, secret_text, failing={"sqs": ("get_queue_attributes",)})
    stack.handler(stack.event(env(purchase("warm"))), FakeLambdaContext())
    sandbox.faults.error_rate, sandbox.faults.apply_to = 1.0, "post"
    event = stack.event(GOOD)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    # When handled
    response = stack.handler(event, FakeLambdaContext())
    # Then it is left for SQS to move (its reason in the logs), not dead-lettered without the count
    assert failed(response) == [event["Records"][0]["messageId"]] and stack.dead_letters() == []


def test_on_its_last_receive_an_undeliverable_message_is_dead_lettered_with_the_reason(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given Monetate down and a message on its 5th receive of a queue with maxReceiveCount 5
    stack = make_stack(moto, sandbox, secret_text)
    stack.handler(stack.event(env(purchase("warm"))), FakeLambdaContext())
    sandbox.faults.error_rate, sandbox.faults.apply_to = 1.0, "post"
    event = stack.event(GOOD)
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "5"
    # When handled
    response = stack.handler(event, FakeLambdaContext())
    # Then it is in the DLQ byte for byte, with retries_exhausted and Monetate's answer
    assert failed(response) == []
    [letter] = stack.dead_letters()
    assert letter["Body"] == GOOD
    attrs = letter["MessageAttributes"]
    assert attrs["error_type"]["StringValue"] == "retries_exhausted"
    assert (
        "500" in attrs["error_message"]["StringValue"]
        and "after 5 receives" in attrs["error_message"]["StringValue"]
    )
