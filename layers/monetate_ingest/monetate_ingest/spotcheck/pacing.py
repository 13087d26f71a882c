"""The one-lookup-per-second pacer in front of Monetate's single-record GET.

Monetate allows at most one ``GET /data/{schema}/?id=`` per second for the whole retailer, and only
for manual spot checks. :class:`Pacer` hands out *send slots*: each caller reserves the next free
slot under a lock, so concurrent callers get slots one interval apart in arrival order, then sleeps
outside the lock until its slot comes. A caller whose slot is further away than it is willing to
wait gets :class:`PaceExceeded` with the number of seconds until the next free slot, and reserves
nothing (so refused callers never push the others back).

The interval is measured from the *reservation*, which is the moment the caller may send: the
caller must go straight from :meth:`Pacer.acquire` to the request, with the client, the settings
and the token already in hand. What remains between the slot and the bytes on the wire (a socket
write, a loopback or TLS connection reuse) is absorbed by a safety margin on top of the 1.0 s
(``DEFAULT_MARGIN``, 50 ms), so two upstream GETs are never less than 1.0 s apart as seen by the
sender, and Monetate (which counts at its end) never sees a quicker pair either.

Scope: a :class:`Pacer` paces one process. ValidateRecord is deployed with reserved concurrency 1,
so a single warm container serves every caller and its module-level pacer *is* the retailer's
budget. That assumes (a) nothing else calls the single-record GET for this retailer — no other
function, script or person with the same API user — and (b) a new container (after a cold start
or recycling) starts no sooner than a second after the previous one's last GET, which holds
because a cold start takes longer than that. If either assumption is ever broken, the budget has
to live in a shared store (a DynamoDB conditional write per slot) instead of in memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

#: Monetate's documented limit: one single-record GET per second.
MIN_INTERVAL = 1.0
#: Added to the interval to absorb jitter between the reserved slot and the actual send.
DEFAULT_MARGIN = 0.05


class PaceExceeded(Exception):
    """The next free slot is further away than the caller may wait.

    ``retry_after`` is the number of seconds (a float) until that slot; :attr:`retry_after_header`
    is the same rounded up to a whole number of at least 1, for an HTTP ``Retry-After`` header.
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(0.0, float(retry_after))
        super().__init__(f"the next Monetate lookup slot is {self.retry_after:.2f} s away; try again later")

    @property
    def retry_after_header(self) -> int:
        return max(1, math.ceil(self.retry_after))


class Pacer:
    """Thread-safe reservations of send slots at least ``min_interval + margin`` seconds apart.

    ``clock`` must be monotonic; ``sleep`` is injectable so tests run without waiting.
    """

    def __init__(
        self,
        min_interval: float = MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        margin: float = DEFAULT_MARGIN,
    ) -> None:
        if min_interval < 0 or margin < 0:
            raise ValueError("min_interval and margin must not be negative")
        self._spacing = min_interval + margin
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_free: float | None = None  # earliest time the next slot may start
        self.granted = 0
        self.refused = 0

    @property
    def spacing(self) -> float:
        """Seconds between two consecutive slots (interval plus margin)."""
        return self._spacing

    def acquire(self, max_wait: float) -> None:
        """Reserve the next slot and sleep until it comes; return when the caller may send.

        Raises :class:`PaceExceeded` (reserving nothing) if that slot is more than ``max_wait``
        seconds away.
        """
        with self._lock:
            now = self._clock()
            slot = now if self._next_free is None else max(now, self._next_free)
            wait = slot - now
            if wait > max_wait:
                self.refused += 1
                raise PaceExceeded(wait)
            self._next_free = slot + self._spacing
            self.granted += 1
        # Sleep until the slot itself (a sleep may wake a little early on some platforms).
        while (remaining := slot - self._clock()) > 0:
            self._sleep(remaining)

    def next_free_in(self) -> float:
        """Seconds until a caller arriving now would be allowed to send (0 when free)."""
        with self._lock:
            if self._next_free is None:
                return 0.0
            return max(0.0, self._next_free - self._clock())
