"""Deadlines from the invocation's own budget: when posting hands over, and what each POST is given."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from monetate_ingest.records.deadline import (
    CLIENT_OVERRUN,
    RETURN_GUARD,
    Budget,
    PostLatencies,
)
from monetate_ingest.records.handler import make_handler

from tests.unit.records.fakes import FakeClock, World, env, purchase

BUDGETS = [10.0, 15.0, 30.0, 60.0, 300.0, 900.0]


def budget(total: float, *, post: float | None = None, settle: float = 0.0, ceiling: float = 10.0) -> Budget:
    latencies = PostLatencies()
    if post is not None:
        latencies.observe(post)
    b = Budget(total, ceiling=ceiling, latencies=latencies, clock=FakeClock(0.0))
    b.expect_settling(settle)
    return b


@pytest.mark.parametrize(
    ("total", "post", "settle"),
    list(itertools.product(BUDGETS, [None, 0.01, 0.2, 1.0, 5.0, 60.0], [0.0, 0.5, 5.0])),
)
def test_whatever_the_budget_posting_goes_on_for_70_percent_and_posts_end_a_second_early(
    total: float, post: float | None, settle: float
) -> None:
    # Given a budget from 10 s to 900 s, POSTs seen to take from 10 ms to a minute, slow settling
    b = budget(total, post=post, settle=settle)
    # Then new POSTs may start until at least 70 % of the budget
    hand_over, post_deadline = b.hand_over(), b.post_deadline()
    assert hand_over is not None and post_deadline is not None
    assert hand_over - b.started >= 0.7 * total - 1e-9
    # And every POST must be finished at least the return guard plus the client's overrun early
    assert b.deadline is not None and b.deadline - post_deadline >= RETURN_GUARD + CLIENT_OVERRUN
    assert hand_over <= post_deadline


def test_the_configured_margin_is_a_ceiling_not_a_floor() -> None:
    # Given fast POSTs (0.2 s) and a configured margin of 10 s on a 60 s budget
    b = budget(60.0, post=0.2, ceiling=10.0)
    # Then the hand-over follows what the invocation sees: the end reserve plus one POST
    assert b.margin() == pytest.approx(RETURN_GUARD + CLIENT_OVERRUN + 0.1 + 0.2)
    # And slow POSTs (8 s) are bounded by the ceiling
    assert budget(900.0, post=8.0, ceiling=2.0).margin() == pytest.approx(2.0)


def test_without_a_deadline_every_post_may_start_and_gets_none() -> None:
    b = Budget.unlimited()
    assert b.may_start() and b.post_deadline() is None and b.hand_over() is None and not b.out_of_time()


def test_post_latencies_keep_the_longest_of_the_recent_ones() -> None:
    latencies = PostLatencies(size=3)
    for seconds in (5.0, 0.1, 0.2, 0.3):
        latencies.observe(seconds)
    assert latencies.expected == 0.3  # the 5 s one has left the window


@pytest.mark.parametrize("total", [10.0, 60.0, 900.0])
def test_an_invocation_posts_until_its_hand_over_and_returns_a_second_before_its_deadline(
    total: float,
) -> None:
    # Given one row per POST, POSTs of total/50 seconds each, and 200 messages (4x what fits)
    latency = total / 50
    w = World(max_rows=1, latency=latency)
    bodies = [env(purchase(f"p{i}")) for i in range(200)]
    started = w.clock()
    # When processed within the budget
    out = w.run(*bodies, budget=total)
    deadline = started + total
    # Then POSTs started until at least 70 % of the budget, and all ended at least 1 s early
    assert max(w.monetate.started) >= started + 0.7 * total
    assert max(w.monetate.ended) <= deadline - RETURN_GUARD
    assert w.clock() <= deadline - RETURN_GUARD
    # And each message has one outcome: the rows stored are the posted ones, the rest retried
    posted = [mid for mid, outcome in out.results.items() if outcome == "posted"]
    assert len(posted) == len(w.monetate.stored) and len(posted) + len(out.failures) == 200
    assert all("time" in reason for reason in out.failures.values())


@pytest.mark.parametrize("total", [10.0, 60.0])
def test_a_post_that_cannot_finish_in_time_is_left_and_its_messages_retried(total: float) -> None:
    # Given POSTs that take 40 % of the budget each (Monetate very slow)
    w = World(max_rows=1, latency=0.4 * total)
    out = w.run(*(env(purchase(f"p{i}")) for i in range(5)), budget=total)
    # Then posting went on past 70 % of the budget, never past the POSTs' deadline
    assert max(w.monetate.ended) >= 0.7 * total + w.monetate.started[0]
    assert max(w.monetate.ended) <= w.monetate.started[0] + total - RETURN_GUARD
    # And what was not stored in time is retried, not counted done
    assert len(out.results) == len(w.monetate.stored)
    assert len(out.failures) == 5 - len(w.monetate.stored) > 0


def test_every_post_is_given_the_invocation_s_post_deadline() -> None:
    w = World(max_rows=1, latency=0.1)
    w.run(env(purchase("p1")), env(purchase("p2")), budget=30.0)
    assert len(w.monetate.deadlines) == 2
    assert all(
        d is not None and d <= w.monetate.started[0] + 30.0 - RETURN_GUARD - CLIENT_OVERRUN
        for d in w.monetate.deadlines
    )


class Context:
    """The part of a Lambda context the handler reads."""

    aws_request_id = "req-1"

    def __init__(self, remaining_ms: int) -> None:
        self.deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_the_handler_derives_the_posts_deadline_from_the_invocation_s_remaining_time() -> None:
    # Given an invocation with 10 s left
    w = World()
    w.monetate.clock = time.monotonic  # type: ignore[assignment]
    handler = make_handler(w.deps)
    context = Context(10_000)
    event: dict[str, Any] = {
        "Records": [
            {
                "messageId": "a",
                "receiptHandle": "rh",
                "body": env(purchase("p1")),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:records",
                "awsRegion": "us-east-1",
            }
        ]
    }
    # When a batch is handled
    assert handler(event, context) == {"batchItemFailures": []}
    # Then the POST was given a deadline before the invocation's, by at least the return guard
    [deadline] = w.monetate.deadlines
    assert deadline is not None
    assert context.deadline - 3.0 <= deadline <= context.deadline - RETURN_GUARD - CLIENT_OVERRUN
