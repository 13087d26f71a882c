"""The sandbox's request log (never holds Authorization values)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class LoggedRequest:
    """One answered request; times from ``time.monotonic()``."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    started: float
    finished: float
    username: str | None


class RequestLog:
    """Append-only, thread-safe list of LoggedRequest."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[LoggedRequest] = []

    def append(self, item: LoggedRequest) -> None:
        """Record one request."""
        with self._lock:
            self._items.append(item)

    def snapshot(self) -> list[LoggedRequest]:
        """A copy of the log, oldest first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._items.clear()
