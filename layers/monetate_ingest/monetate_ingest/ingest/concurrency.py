"""Adaptive concurrency: additive increase, multiplicative decrease (AIMD), like TCP.

IngestFile posts from a thread pool; when Monetate starts answering 429 the limit halves, and each
run of ``limit`` clean batches grows it back by one, up to ``POST_CONCURRENCY``.
"""

from __future__ import annotations

import threading


class AdaptiveLimit:
    def __init__(self, maximum: int, *, minimum: int = 1) -> None:
        self.maximum = max(minimum, maximum)
        self.minimum = minimum
        self.limit = self.maximum
        self._streak = 0
        self._lock = threading.Lock()
        self.decreases = 0

    def on_throttle(self) -> None:
        with self._lock:
            new = max(self.minimum, self.limit // 2)
            if new < self.limit:
                self.decreases += 1
            self.limit = new
            self._streak = 0

    def on_success(self) -> None:
        with self._lock:
            self._streak += 1
            if self._streak >= self.limit and self.limit < self.maximum:
                self.limit += 1
                self._streak = 0
