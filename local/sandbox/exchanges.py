"""Every request the sandbox answered, with its answer, for the contract checker.

Off by default (benchmarks pay one empty-list check per request); :func:`recording` turns it on
for every sandbox in the process, wherever it was started (test fixtures, ``local.stack``, a
test's own ``with MonetateSandbox()``). Credentials never get in: the Authorization header is
kept as its scheme only (``"Token ***"``), which is all the checker needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

#: Who produced the answer: the endpoints (checked against the reference), the fault injector
#: (5xx, 429, HTML pages on purpose: exempt), or a sandbox bug caught by the server (always wrong).
Origin = Literal["endpoint", "fault", "sandbox_error"]

REDACTED = "***"


@dataclass(frozen=True)
class Exchange:
    """One request as it arrived and the answer it got."""

    base_url: str
    retailer: str
    environment: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    body: bytes
    status: int
    answer_headers: tuple[tuple[str, str], ...]
    answer_body: bytes
    origin: Origin
    #: The stored schema of the dataset the path names (``/data/{name}/`` …), at answer time.
    dataset: dict[str, Any] | None
    #: False while the sandbox was told not to validate rows (``validate_rows = False``).
    rows_checked: bool

    def header(self, name: str) -> str | None:
        """The request header ``name`` (case-insensitive), or None."""
        return _find(self.headers, name)

    def answer_header(self, name: str) -> str | None:
        """The answer header ``name`` (case-insensitive), or None."""
        return _find(self.answer_headers, name)

    @property
    def target(self) -> str:
        """``METHOD /path`` for messages."""
        return f"{self.method} {self.path}"


def _find(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers if k.lower() == wanted), None)


def redact_authorization(value: str) -> str:
    """``"Token abc"`` → ``"Token ***"``; a bare scheme stays bare."""
    scheme, _, credential = value.strip().partition(" ")
    return f"{scheme} {REDACTED}" if credential.strip() else scheme


Sink = Callable[[Exchange], None]

_lock = threading.Lock()
_sinks: list[Sink] = []


def active() -> bool:
    """True while someone records exchanges (cheap: read without the lock)."""
    return bool(_sinks)


def publish(exchange: Exchange) -> None:
    """Hand one exchange to every sink."""
    with _lock:
        sinks = list(_sinks)
    for sink in sinks:
        sink(exchange)


@contextmanager
def recording(sink: Sink) -> Iterator[None]:
    """Send every exchange of every sandbox in this process to ``sink`` until the block ends."""
    with _lock:
        _sinks.append(sink)
    try:
        yield
    finally:
        with _lock:
            _sinks.remove(sink)


class ExchangeLog:
    """A thread-safe sink that keeps exchanges until drained."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Exchange] = []

    def __call__(self, exchange: Exchange) -> None:
        with self._lock:
            self._items.append(exchange)

    def drain(self) -> list[Exchange]:
        """Everything recorded since the last drain, oldest first."""
        with self._lock:
            items, self._items = self._items, []
        return items
