"""A dependency-free progress line on stderr: ``[#####-----]  50%  read … posted … rows/s``.

Redrawn at most 5 times a second by a background ticker that samples the run; off when the stream
is not a terminal (or with ``--quiet``), so logs and CI output stay clean.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

MIN_INTERVAL = 0.2  # seconds: at most 5 redraws per second
BAR_WIDTH = 24


@dataclass(frozen=True)
class Sample:
    """What the bar shows: bytes of the file consumed and the report's row counts so far."""

    bytes_read: int = 0
    read: int = 0
    posted: int = 0
    rejected: int = 0
    parked: int = 0


class ProgressBar:
    """Renders :class:`Sample` s to ``stream`` on one line, throttled to ``min_interval``."""

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int,
        *,
        enabled: bool = True,
        dry_run: bool = False,
        clock: Callable[[], float] = time.monotonic,
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.stream = stream
        self.total = max(0, total_bytes)
        self.enabled = enabled
        self.dry_run = dry_run
        self.clock = clock
        self.min_interval = min_interval
        self.started = clock()
        self._last_draw: float | None = None
        self._last_len = 0
        self.draws = 0

    def render(self, sample: Sample, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        fraction = min(1.0, sample.bytes_read / self.total) if self.total else 0.0
        filled = round(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        rate = sample.read / elapsed if elapsed > 0 else 0.0
        posted = "valid" if self.dry_run else "posted"
        text = (
            f"[{bar}] {fraction * 100:5.1f}%  read {sample.read:,}  {posted} {sample.posted:,}  "
            f"rejected {sample.rejected:,}"
        )
        if sample.parked:
            text += f"  parked {sample.parked:,}"
        return f"{text}  {rate:,.0f} rows/s"

    def update(self, sample: Sample, *, force: bool = False) -> bool:
        """Redraw if enabled and ``min_interval`` has passed (or ``force``); True when drawn."""
        if not self.enabled:
            return False
        now = self.clock()
        if not force and self._last_draw is not None and now - self._last_draw < self.min_interval:
            return False
        line = self.render(sample, now)
        pad = " " * max(0, self._last_len - len(line))
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._last_len = len(line)
        self._last_draw = now
        self.draws += 1
        return True

    def close(self, sample: Sample) -> None:
        """Draw the final state and end the line."""
        if self.enabled:
            self.update(sample, force=True)
            self.stream.write("\n")
            self.stream.flush()


class Ticker:
    """Calls ``bar.update(sample())`` every ``interval`` seconds on a daemon thread until closed."""

    def __init__(
        self, bar: ProgressBar, sample: Callable[[], Sample], interval: float = MIN_INTERVAL
    ) -> None:
        self.bar = bar
        self.sample = sample
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Ticker:
        if self.bar.enabled:
            self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.bar.update(self.sample())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.bar.close(self.sample())


def stream_is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
