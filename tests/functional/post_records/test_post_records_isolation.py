"""Isolation against the sandbox: one payload Monetate keeps failing, an outage, throttling."""

from __future__ import annotations

import pytest

from local.aws import MotoServer
from local.sandbox import MonetateSandbox
from local.sqs_poller import FakeLambdaContext
from tests.functional.post_records.harness import Stack, env, failed, letter_types, make_stack, purchase


@pytest.fixture
def stack(moto: MotoServer, sandbox: MonetateSandbox, secret_text: str) -> Stack:
    s = make_stack(moto, sandbox, secret_text)
    s.handler(s.event(env(purchase("warm"))), FakeLambdaContext())  # token and schemas cached
    return s


def data_posts(stack: Stack, schema: str) -> int:
    return sum(
        1 for r in stack.sandbox.requests if r.method == "POST" and r.path.endswith(f"/data/{schema}/")
    )


def test_a_batch_of_10_lists_only_the_message_whose_rows_always_get_503(stack: Stack) -> None:
    # Given Monetate answering 503 to any POST holding one message's rows
    stack.sandbox.faults.poison = b"poisoned"
    bodies = [env(purchase(f"p{i}")) for i in range(3)]
    bodies += ["not json", env({"customer_id": "c"}, schema="ghosts"), env(purchase("bad", price="twelve"))]
    bodies += [env(purchase("px", customer_id="poisoned"))] + [env(purchase(f"p{i}")) for i in range(3, 6)]
    # When the 10 messages are handled in one batch (7 merged into one POST)
    response, ids = stack.invoke(*bodies)
    # Then batchItemFailures lists the poisoned message alone
    assert failed(response) == [ids[6]]
    # And the 6 valid messages are stored, the 3 permanent failures dead-lettered with their reasons
    stored = {r["purchase_id"] for r in stack.sandbox.rows("purchases")}
    assert {f"p{i}" for i in range(6)} <= stored and "px" not in stored
    assert letter_types(stack.dead_letters()) == {
        ids[3]: "invalid_json",
        ids[4]: "unknown_schema",
        ids[5]: "rows_rejected",
    }


def test_an_all_503_outage_costs_at_most_one_extra_post_per_schema(stack: Stack) -> None:
    # Given Monetate answering 500 to every data POST (the client retries each once)
    stack.sandbox.faults.error_rate = 1.0
    stack.sandbox.faults.apply_to = "post"
    before = {s: data_posts(stack, s) for s in ("purchases", "visits")}
    # When 6 purchases and 3 visits messages are handled
    bodies = [env(purchase(f"p{i}")) for i in range(6)] + [
        env({"customer_id": f"v{i}"}, schema="visits") for i in range(3)
    ]
    response, ids = stack.invoke(*bodies)
    # Then every message is retried and none dead-lettered
    assert sorted(failed(response)) == sorted(ids) and stack.dead_letters() == []
    # And each schema saw its merged POST and at most one more (each sent twice: one client retry)
    posts = {s: data_posts(stack, s) - before[s] for s in before}
    assert posts["purchases"] <= 2 * 2 and posts["visits"] <= 2 * 2
    assert sum(posts.values()) <= 2 * 3


def test_429_after_the_client_s_retries_is_not_split(stack: Stack) -> None:
    # Given Monetate throttling every data POST
    stack.sandbox.faults.rate_429 = 1.0
    stack.sandbox.faults.apply_to = "post"
    before = stack.posts()
    # When 5 messages are handled
    response, ids = stack.invoke(*(env(purchase(f"p{i}")) for i in range(5)))
    # Then all are retried after one merged POST (sent twice: the client's one retry), no split
    assert sorted(failed(response)) == sorted(ids)
    assert stack.posts() - before == 2


def test_two_schemas_one_failing_posts_the_other(stack: Stack) -> None:
    # Given every visits POST failing (its payload), purchases fine
    stack.sandbox.faults.poison = b'"customer_id":"v'
    response, ids = stack.invoke(
        env({"customer_id": "v1"}, schema="visits"), env(purchase("p1")), env(purchase("p2"))
    )
    assert failed(response) == [ids[0]]
    assert {"p1", "p2"} <= {r["purchase_id"] for r in stack.sandbox.rows("purchases")}
