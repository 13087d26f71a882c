"""AdaptiveLimit: halves on throttling, grows back one step per run of clean batches (AIMD)."""

from __future__ import annotations

from monetate_ingest.ingest.concurrency import AdaptiveLimit


def test_throttling_halves_the_limit_down_to_one() -> None:
    # Given a limit of 8
    limit = AdaptiveLimit(8)
    # When Monetate throttles three times  Then it goes 4, 2, 1 and stays at 1
    for expected in (4, 2, 1, 1):
        limit.on_throttle()
        assert limit.limit == expected
    assert limit.decreases == 3


def test_clean_batches_grow_the_limit_back_one_step_per_run_up_to_the_maximum() -> None:
    # Given a limit halved from 4 to 2
    limit = AdaptiveLimit(4)
    limit.on_throttle()
    # When 2 clean batches finish  Then it grows to 3; 3 more  Then 4; more  Then it stays at 4
    limit.on_success()
    limit.on_success()
    assert limit.limit == 3
    for _ in range(3):
        limit.on_success()
    assert limit.limit == 4
    for _ in range(10):
        limit.on_success()
    assert limit.limit == 4


def test_a_throttle_resets_the_run_of_clean_batches() -> None:
    # Given a limit of 2 after a throttle, one clean batch into the run
    limit = AdaptiveLimit(4)
    limit.on_throttle()
    limit.on_success()
    # When throttled again  Then it halves and the run starts over
    limit.on_throttle()
    assert limit.limit == 1
    limit.on_success()
    assert limit.limit == 2
