"""The invocation budget: posting for most of the time, handing over in time, at any timeout."""

from __future__ import annotations

import pytest
from monetate_ingest.ingest.budget import HANDOVER_SECONDS, SAFETY_SECONDS, Budget


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _budget(seconds: float, clock: Clock, ceiling: float = 60.0) -> Budget:
    start = clock.now
    return Budget(lambda: int((seconds - (clock.now - start)) * 1000), margin_ceiling=ceiling, clock=clock)


@pytest.mark.parametrize("seconds", [10, 30, 60, 120, 900])
def test_posting_goes_on_for_at_least_70_percent_of_any_budget(seconds: float) -> None:
    # Given POSTs of 0.2 s (500 rows at 2,500 rows/s) and the default 60 s margin ceiling
    clock = Clock()
    budget = _budget(seconds, clock)
    posting = 0.0
    # When batches are taken until the budget says stop
    while not budget.out_of_time():
        clock.now += 0.2
        posting += 0.2
        budget.observe(0.2)
    # Then at least 70% of the time was posting, and the POST deadline leaves a second spare
    assert posting >= 0.7 * seconds
    deadline = budget.post_deadline()
    assert deadline is not None and budget.ends is not None
    assert budget.ends - deadline == SAFETY_SECONDS + HANDOVER_SECONDS >= 1.0


def test_slow_posts_widen_the_reserve_but_never_past_the_ceiling_or_30_percent() -> None:
    clock = Clock()
    budget = _budget(900, clock, ceiling=20.0)
    for _ in range(10):
        budget.observe(8.0)
    assert budget.reserve() == 18.0  # 1 + 1 + 2 x 8
    budget.observe(30.0)
    assert budget.reserve() == 20.0  # the configured margin is a ceiling
    short = _budget(10, Clock())
    short.observe(30.0)
    assert short.reserve() == 3.0  # 30% of a 10-second budget


def test_without_a_context_there_is_no_deadline() -> None:
    budget = Budget(None)
    budget.observe(100.0)
    assert not budget.out_of_time() and budget.post_deadline() is None and budget.left() is None
