"""The invocation's time budget: when to stop taking new batches, and each POST's deadline.

A fixed margin cannot fit every function timeout (60 s is the whole of a 10-second budget), so
the hand-over point comes from the time this invocation has and the POST latencies it observes:
stop taking new batches when what is left would not cover the batches in flight finishing plus
the hand-over itself (checkpoint, report, continuation). The configured margin is a ceiling.
POSTs get a deadline a safety gap before the invocation's end, so retries never sleep past it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: Always kept back at the end of an invocation (the function returns at least this early).
SAFETY_SECONDS = 1.0
#: Time the hand-over needs besides the posts in flight: checkpoint, rejects, report, invoke.
HANDOVER_SECONDS = 1.0
#: The reserve never takes more than this share of the whole budget.
MAX_RESERVE_SHARE = 0.3
#: Latencies remembered (the recent ones describe Monetate now).
WINDOW = 64


class Budget:
    """Time left in one invocation, from ``remaining_ms`` (the Lambda context's) at start."""

    def __init__(
        self,
        remaining_ms: Callable[[], int] | None,
        *,
        margin_ceiling: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        started = clock()
        total = (remaining_ms() / 1000.0) if remaining_ms is not None else None
        self.total = total
        self.ends = None if total is None else started + total
        self.margin_ceiling = margin_ceiling
        self._latencies: deque[float] = deque(maxlen=WINDOW)

    def observe(self, seconds: float) -> None:
        """One POST (with its retries and bisection) took ``seconds``."""
        self._latencies.append(seconds)

    def left(self) -> float | None:
        return None if self.ends is None else self.ends - self._clock()

    def reserve(self) -> float:
        """Seconds kept back for the posts in flight to finish and the hand-over."""
        if self.total is None:
            return 0.0
        slowest = max(self._latencies, default=0.0)
        typical = sorted(self._latencies)[len(self._latencies) // 2] if self._latencies else 0.0
        wanted = SAFETY_SECONDS + HANDOVER_SECONDS + max(2 * typical, slowest)
        cap = max(SAFETY_SECONDS + HANDOVER_SECONDS, MAX_RESERVE_SHARE * self.total)
        return min(wanted, cap, max(self.margin_ceiling, SAFETY_SECONDS + HANDOVER_SECONDS))

    def out_of_time(self) -> bool:
        """Stop taking new batches now?"""
        left = self.left()
        return left is not None and left < self.reserve()

    def post_deadline(self) -> float | None:
        """A ``time.monotonic()`` instant no POST (nor its retries) may run past."""
        return None if self.ends is None else self.ends - SAFETY_SECONDS - HANDOVER_SECONDS
