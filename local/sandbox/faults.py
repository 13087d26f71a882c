"""Fault injection: 500s, 429s, HTML 502s from a "proxy", and latency."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Literal

ApplyTo = Literal["all", "data", "post", "auth"]

PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass
class FaultConfig:
    """What to inject; shares are probabilities in 0..1, times in seconds.

    ``apply_to``: "all" (auth and Data API), "data" (Data API only), "post" (data POSTs only) or
    "auth" (token mints only). ``poison``: a data POST whose body contains these bytes is answered
    503, whatever else is set (a payload Monetate keeps failing on).
    """

    error_rate: float = 0.0
    rate_429: float = 0.0
    retry_after: float | None = None
    latency: float = 0.0
    latency_spikes: tuple[float, float] | None = None
    html_error_rate: float = 0.0
    seed: int | None = None
    apply_to: ApplyTo = "all"
    poison: bytes | None = None


@dataclass(frozen=True)
class Fault:
    """One decision: ``delay`` to sleep, then answer ``status`` (None: serve normally)."""

    delay: float = 0.0
    status: int | None = None


NO_FAULT = Fault()


class FaultInjector:
    """Draws decisions from a ``random.Random`` seeded from the current config."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._seeded: tuple[int, int | None] | None = None

    def decide(self, config: FaultConfig, *, is_auth: bool, is_post: bool) -> Fault:
        """The fault for one request of the given kind."""
        if not _applies(config.apply_to, is_auth=is_auth, is_post=is_post):
            return NO_FAULT
        with self._lock:
            marker = (id(config), config.seed)
            if marker != self._seeded:
                self._rng = random.Random(config.seed)
                self._seeded = marker
            spike_draw, draw = self._rng.random(), self._rng.random()
        delay = config.latency
        if config.latency_spikes is not None and spike_draw < config.latency_spikes[0]:
            delay += config.latency_spikes[1]
        status = None
        for share, code in ((config.html_error_rate, 502), (config.error_rate, 500), (config.rate_429, 429)):
            if draw < share:
                status = code
                break
            draw -= share
        return Fault(delay, status) if delay or status else NO_FAULT


def _applies(apply_to: ApplyTo, *, is_auth: bool, is_post: bool) -> bool:
    if apply_to == "all":
        return True
    if apply_to == "data":
        return not is_auth
    if apply_to == "auth":
        return is_auth
    return is_post and not is_auth
