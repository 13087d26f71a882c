"""Capped full-jitter exponential backoff and ``Retry-After`` parsing, shared by client and tokens.

The client's loop is hand-written rather than urllib3's ``Retry``: urllib3 sleeps inside the
adapter with ``time.sleep`` (no injected clock, no per-call policy, no retry counts) and offers
only additive jitter, not full jitter.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts; delay ``uniform(0, min(cap, base * 2**attempt))``."""

    max_retries: int = 4
    base: float = 0.2
    cap: float = 20.0
    rand: Callable[[float, float], float] = field(default=random.uniform, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        return self.rand(0.0, min(self.cap, self.base * 2 ** min(attempt, 30)))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The server's ``Retry-After`` (capped at ``cap``) when given, else :meth:`backoff`."""
        if retry_after is not None:
            return min(self.cap, max(0.0, retry_after))
        return self.backoff(attempt)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if absent/bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(text).timestamp() - now()
        except (TypeError, ValueError, IndexError):
            return None
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)
