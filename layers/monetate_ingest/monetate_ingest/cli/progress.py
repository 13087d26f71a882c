"""The ``push`` progress bar on stderr, drawn by tqdm: bytes of the file read, then the row counts.

``push bar.csv:  50%|█████     | 1.00M/2.00M [00:01<00:01, 1.00MB/s, read 400  posted 390  rejected 10]``

tqdm is a CLI-only dependency (``requirements-dev.txt``, pyproject's ``cli`` extra);
the Lambda layer does not ship it, so it is imported only when a bar is actually drawn, never when
this module is imported. Off when the stream is not a terminal (or with ``--quiet``), so logs and
CI output stay clean. A background :class:`Ticker` samples the run; tqdm throttles the redraws.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

MIN_INTERVAL = 0.2  # seconds: at most 5 redraws per second
MISSING_TQDM = "progress bar off: tqdm is not installed (pip install tqdm, or use --quiet to hide this)"


@dataclass(frozen=True)
class Sample:
    """What the bar shows: bytes of the file consumed and the report's row counts so far."""

    bytes_read: int = 0
    read: int = 0
    posted: int = 0
    rejected: int = 0
    parked: int = 0
    unchanged: int = 0


def counts_text(sample: Sample, *, dry_run: bool = False) -> str:
    """The counts after the bar: ``read 400  posted 390  rejected 10`` (``valid`` on a dry run);
    parked and unchanged (change-only sync) when there are any."""
    posted = "valid" if dry_run else "posted"
    text = f"read {sample.read:,}  {posted} {sample.posted:,}  rejected {sample.rejected:,}"
    if sample.parked:
        text += f"  parked {sample.parked:,}"
    if sample.unchanged:
        text += f"  unchanged {sample.unchanged:,}"
    return text


class ProgressBar:
    """One tqdm bar over the file's bytes, with :func:`counts_text` as its postfix."""

    def __init__(
        self,
        stream: TextIO,
        total_bytes: int,
        *,
        enabled: bool = True,
        dry_run: bool = False,
        label: str = "push",
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self.dry_run = dry_run
        self._bar: tqdm[None] | None = None
        if not enabled:
            return
        try:
            from tqdm import tqdm  # here, not at the top: the Lambda handlers never import tqdm
        except ImportError:
            stream.write(MISSING_TQDM + "\n")
            stream.flush()
            return
        self._bar = tqdm(
            total=max(0, total_bytes) or None,
            desc=f"{label} (dry run)" if dry_run else label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=stream,
            mininterval=min_interval,
            dynamic_ncols=True,
            leave=True,
        )

    @property
    def enabled(self) -> bool:
        """True while a bar is drawn (enabled, tqdm importable, not yet closed)."""
        return self._bar is not None

    def update(self, sample: Sample) -> None:
        """Move the bar to ``sample``; tqdm redraws at most once per ``min_interval``."""
        if self._bar is None:
            return
        self._bar.set_postfix_str(counts_text(sample, dry_run=self.dry_run), refresh=False)
        self._bar.update(max(0, sample.bytes_read - self._bar.n))

    def close(self, sample: Sample) -> None:
        """Draw the final state and end the line."""
        if self._bar is None:
            return
        bar, self._bar = self._bar, None
        bar.set_postfix_str(counts_text(sample, dry_run=self.dry_run), refresh=False)
        bar.n = max(bar.n, sample.bytes_read)
        bar.close()


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
