"""The pacer: slots at least one interval apart, refusals with Retry-After, thread safety."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from monetate_ingest.spotcheck.pacing import DEFAULT_MARGIN, MIN_INTERVAL, PaceExceeded, Pacer


class FakeClock:
    """A monotonic clock that only moves when someone sleeps on it."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_first_caller_goes_at_once() -> None:
    # Given a fresh pacer
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    # When one caller acquires
    pacer.acquire(max_wait=0)
    # Then it did not wait
    assert clock.sleeps == []
    assert pacer.granted == 1


def test_default_spacing_is_one_second_plus_margin() -> None:
    # Given the defaults
    pacer = Pacer()
    # Then slots are 1.0 s apart plus the documented safety margin
    assert MIN_INTERVAL == 1.0
    assert 0 < DEFAULT_MARGIN <= 0.1
    assert pacer.spacing == pytest.approx(1.0 + DEFAULT_MARGIN)


def test_second_caller_waits_for_the_next_slot() -> None:
    # Given a caller that just took a slot
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=2)
    start = clock.now
    # When another arrives 0.3 s later, willing to wait 2 s
    clock.advance(0.3)
    pacer.acquire(max_wait=2)
    # Then it is released exactly one spacing after the first slot
    assert clock.now == pytest.approx(start + pacer.spacing)
    assert sum(clock.sleeps) == pytest.approx(pacer.spacing - 0.3)


def test_caller_after_the_interval_does_not_wait() -> None:
    # Given a slot taken 1.2 s ago
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=0)
    clock.advance(1.2)
    # When the next caller acquires with no patience at all
    pacer.acquire(max_wait=0)
    # Then it goes immediately
    assert clock.sleeps == []


def test_refuses_when_the_slot_is_further_than_max_wait() -> None:
    # Given a slot taken just now
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=0)
    clock.advance(0.25)
    # When a caller will wait at most 0.5 s
    with pytest.raises(PaceExceeded) as info:
        pacer.acquire(max_wait=0.5)
    # Then it is told how long until the next slot, and the header value is a whole second >= 1
    assert info.value.retry_after == pytest.approx(pacer.spacing - 0.25)
    assert info.value.retry_after_header == 1
    assert clock.sleeps == []
    assert pacer.refused == 1


def test_a_refusal_reserves_nothing() -> None:
    # Given a taken slot and a refused caller
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    pacer.acquire(max_wait=0)
    with pytest.raises(PaceExceeded):
        pacer.acquire(max_wait=0)
    # When a patient caller comes next
    pacer.acquire(max_wait=5)
    # Then it got the very next slot, not one after the refused caller's
    assert clock.now == pytest.approx(1000.0 + pacer.spacing)


def test_reservations_queue_callers_one_spacing_apart() -> None:
    # Given three callers arriving at the same instant
    clock = FakeClock()
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    # When each reserves (the clock is wound back: they all arrived at t=1000)
    for _ in range(3):
        pacer.acquire(max_wait=10)
        clock.now = 1000.0
    # Then their slots are 0, 1 and 2 spacings away
    assert clock.sleeps == pytest.approx([pacer.spacing, 2 * pacer.spacing])
    assert pacer.next_free_in() == pytest.approx(3 * pacer.spacing)


def test_retry_after_header_rounds_up() -> None:
    assert PaceExceeded(0.0).retry_after_header == 1
    assert PaceExceeded(1.01).retry_after_header == 2
    assert PaceExceeded(3.0).retry_after_header == 3
    assert PaceExceeded(-1).retry_after == 0.0


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        Pacer(min_interval=-1)


def test_concurrent_callers_are_released_at_least_one_spacing_apart() -> None:
    # Given a real-clock pacer with a short interval and eight threads starting together
    pacer = Pacer(min_interval=0.1, margin=0.0)
    released: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def caller() -> None:
        barrier.wait()
        pacer.acquire(max_wait=5)
        with lock:
            released.append(time.monotonic())

    # When all eight acquire at once
    threads = [threading.Thread(target=caller) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # Then every one got through, each at least an interval after the previous
    released.sort()
    assert len(released) == 8
    gaps = [b - a for a, b in itertools.pairwise(released)]
    # (the stamps are taken after each release, so thread wake-up jitter of a few ms shows up)
    assert min(gaps) >= 0.1 - 0.015
    assert released[-1] - released[0] >= 7 * 0.1 - 0.015
    assert pacer.granted == 8
