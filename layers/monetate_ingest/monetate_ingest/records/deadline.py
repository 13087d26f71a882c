"""PostRecords' time budget: when to stop starting POSTs, and by when each POST must be finished.

Lambda ends an invocation at its deadline; PostRecords must have returned by then, with an outcome
for every message (a message whose rows could not be posted in time is retried by SQS, never
counted done). :class:`Budget` works from the time the invocation has at its start and from what
it observes — how long POSTs take (:class:`PostLatencies`, kept for the container's life) and how
long the idempotency round-trips took — and gives:

* :meth:`Budget.post_deadline`: the instant every POST must be finished by, handed to the client as
  ``post_body(..., deadline=)`` so that no retry sleeps past it and no read outlasts it. It is the
  deadline less the *end reserve*: :data:`RETURN_GUARD` (return at least that long before the
  deadline), :data:`CLIENT_OVERRUN` (a read may end that long after its own deadline) and the time
  settling the batch is expected to take;
* :meth:`Budget.may_start`: whether a new POST may start — not once less than the *hand-over
  margin* is left: the end reserve plus the longest recent POST, but at most the configured
  ceiling and at most 30 % of the budget, so that whatever the budget (10 s to 900 s) posting goes
  on for at least 70 % of it when Monetate answers.

Pure: the clock is injected; nothing here sleeps or does I/O.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from threading import Lock

#: PostRecords returns at least this long (seconds) before the invocation's deadline.
RETURN_GUARD = 1.0
#: The client caps a read at the time left but not below half a second: a POST may end this much
#: after the deadline it was given.
CLIENT_OVERRUN = 0.5
#: The share of the budget during which new POSTs may start, whatever the margins say.
MIN_POSTING_SHARE = 0.7
#: What a POST is expected to take before one was seen (seconds).
DEFAULT_POST_SECONDS = 1.0
#: Settling (DLQ sends, idempotency writes) is expected to take at least this long (seconds).
MIN_SETTLE_SECONDS = 0.1


class PostLatencies:
    """The durations of the last ``size`` POSTs (thread-safe); ``expected`` is the longest of them."""

    def __init__(self, size: int = 16) -> None:
        self._seen: deque[float] = deque(maxlen=size)
        self._lock = Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._seen.append(max(0.0, seconds))

    @property
    def expected(self) -> float:
        with self._lock:
            return max(self._seen) if self._seen else DEFAULT_POST_SECONDS


class Budget:
    """One invocation's time (see the module docstring); ``remaining`` None means no deadline."""

    def __init__(
        self,
        remaining: float | None,
        *,
        ceiling: float,
        latencies: PostLatencies | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        self.started = clock()
        self.total = remaining
        self.deadline = None if remaining is None else self.started + remaining
        self.ceiling = ceiling
        self.latencies = latencies if latencies is not None else PostLatencies()
        self._settle = MIN_SETTLE_SECONDS

    @classmethod
    def unlimited(cls) -> Budget:
        """No deadline: every POST may start (tests, tools)."""
        return cls(None, ceiling=0.0)

    def expect_settling(self, seconds: float) -> None:
        """How long settling the batch will take (from the idempotency round-trips seen so far)."""
        self._settle = max(MIN_SETTLE_SECONDS, seconds)

    def observe_post(self, seconds: float) -> None:
        self.latencies.observe(seconds)

    def end_reserve(self) -> float:
        """Seconds kept at the end: the return guard, the client's overrun, settling (capped so the
        reserve never eats into the posting share)."""
        fixed = RETURN_GUARD + CLIENT_OVERRUN
        if self.total is None:
            return fixed + self._settle
        room = max(MIN_SETTLE_SECONDS, (1 - MIN_POSTING_SHARE) * self.total - fixed)
        return fixed + min(self._settle, room)

    def margin(self) -> float:
        """Seconds before the deadline after which no new POST starts."""
        reserve = self.end_reserve()
        wanted = reserve + self.latencies.expected
        share = (1 - MIN_POSTING_SHARE) * self.total if self.total is not None else wanted
        return max(reserve, min(wanted, self.ceiling, share))

    def post_deadline(self) -> float | None:
        """The instant every POST must be finished by (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.end_reserve()

    def hand_over(self) -> float | None:
        """The instant after which no new POST starts (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.margin()

    def may_start(self) -> bool:
        """Whether a new POST may start now."""
        hand_over = self.hand_over()
        return hand_over is None or self.clock() < hand_over

    def out_of_time(self) -> bool:
        """Whether the POSTs' deadline has passed (a failure now says nothing about Monetate)."""
        limit = self.post_deadline()
        return limit is not None and self.clock() >= limit

    def left(self) -> float | None:
        """Seconds until the invocation's deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.clock()
