"""Posting units from a thread pool and finishing them in the order they were read.

:class:`Scheduler` submits each unit's batch (at most the adaptive limit in flight, see
:mod:`~monetate_ingest.ingest.concurrency`), hands finished units to ``complete`` strictly in
order, and remembers the units that finished early in ``done_beyond`` (the checkpoint's record of
them), so a resumed file never posts them again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from monetate_ingest.delivery.batching import Batch
from monetate_ingest.delivery.bisection import BisectResult, PartialDeliveryError, post_with_bisection
from monetate_ingest.ingest.concurrency import AdaptiveLimit
from monetate_ingest.ingest.units import Unit, UnitOutcome
from monetate_ingest.monetate.exceptions import RateLimitedError

#: ``park(unit, error)`` → the unit's outcome once its undelivered rows are parked.
Park = Callable[[Unit, PartialDeliveryError], UnitOutcome]


class Scheduler:
    """Submit/settle units in order; see the module docstring.

    ``client`` needs ``post_body`` (and may count 429s in ``stats["throttled"]``, which halves the
    limit); ``complete(unit)`` receives each unit in order with its outcome set; ``tick()`` runs
    after every settle (the job checkpoints there now and then).
    """

    def __init__(
        self,
        client: Any,
        schema: str,
        *,
        concurrency: int,
        done_beyond: dict[str, dict[str, Any]],
        park: Park,
        complete: Callable[[Unit], None],
        tick: Callable[[], None],
        dry_run: bool = False,
        post_ms: list[float] | None = None,
    ) -> None:
        self.client = client
        self.schema = schema
        self.limit = AdaptiveLimit(concurrency)
        self.done_beyond = done_beyond
        self.park = park
        self.complete = complete
        self.tick = tick
        self.dry_run = dry_run
        self.inflight: deque[Unit] = deque()
        self.backlog = 2 * concurrency
        #: Milliseconds per batch POST (with retries and bisection) in this invocation.
        self.post_ms: list[float] = [] if post_ms is None else post_ms
        self._throttled_seen = self._throttled()
        self._pool = ThreadPoolExecutor(max_workers=concurrency)

    # -- the pool -----------------------------------------------------------------------------

    def close(self, *, cancel: bool = False) -> None:
        """Wait for the posts in flight; ``cancel`` drops those not started yet."""
        self._pool.shutdown(wait=True, cancel_futures=cancel)

    def abandon(self, *, cancel: bool = False) -> None:
        """Stop after a failure: wait for the posts in flight (``cancel`` drops those not started)
        and remember every unit that finished, so a retry posts none of them again."""
        self.close(cancel=cancel)
        for u in self.inflight:
            f = u.future
            if u.outcome is None and f is not None and not f.cancelled() and f.exception() is None:
                u.outcome = self._outcome(u)
            if u.outcome is not None:
                self.done_beyond[str(u.seq)] = u.outcome.to_dict()

    def drain(self) -> None:
        """Wait for every unit in flight and finish them all."""
        self.settle(block=True, drain=True)

    def pause(self) -> None:
        """Called after each row read: wait for the oldest unit while too many are in flight."""
        if len(self.inflight) > self.backlog:
            self.settle(block=True)

    # -- submit and settle ----------------------------------------------------------------------

    def submit(self, unit: Unit) -> None:
        """Post ``unit``'s batch (unless an earlier invocation finished it), then settle."""
        if unit.rows == 0 and unit.batch is None:
            return
        done = self.done_beyond.pop(str(unit.seq), None)
        if done is not None:
            unit.outcome = UnitOutcome.from_dict(done)  # finished by an earlier invocation
        elif unit.batch is not None and not self.dry_run:
            running = self._running()
            while len(running) >= self.limit.limit:
                wait(running, return_when=FIRST_COMPLETED)
                self.settle(block=False)
                running = self._running()
            unit.future = self._pool.submit(self._post, unit.batch)
        self.inflight.append(unit)
        self.settle(block=False)

    def settle(self, *, block: bool, drain: bool = False) -> None:
        """Finish units in order; record early finishers; then ``tick``.

        ``block`` waits for the oldest unit's post; ``drain`` waits for all of them.
        """
        inflight = self.inflight
        while inflight:
            head = inflight[0]
            if head.outcome is None and head.future is not None and not head.future.done():
                if not (block or drain):
                    break
                wait([head.future])
                block = False
            inflight.popleft()
            if head.outcome is None:
                head.outcome = self._outcome(head)
            self.complete(head)
        for u in inflight:  # finished early: remember for the checkpoint
            if u.future is not None and u.future.done() and u.outcome is None:
                u.outcome = self._outcome(u)
                self.done_beyond[str(u.seq)] = u.outcome.to_dict()
        self.tick()

    def _running(self) -> list[Future[BisectResult]]:
        return [u.future for u in self.inflight if u.future is not None and not u.future.done()]

    # -- one batch --------------------------------------------------------------------------------

    def _post(self, batch: Batch) -> BisectResult:
        """One batch to Monetate (bisected on 400), timed for the ``PostLatency`` metric."""
        started = time.perf_counter()
        try:
            return post_with_bisection(self.client, self.schema, batch)
        finally:
            self.post_ms.append((time.perf_counter() - started) * 1000)

    def _outcome(self, unit: Unit) -> UnitOutcome:
        """Posted/refused/parked for a finished unit (parks what could not be delivered)."""
        batch = unit.batch
        if batch is None:
            return UnitOutcome()
        if unit.future is None:  # dry run: what would have been posted
            return UnitOutcome(posted=list(batch.lines))
        try:
            res = unit.future.result()
        except PartialDeliveryError as exc:
            if isinstance(exc.cause, RateLimitedError):
                self.limit.on_throttle()
            return self.park(unit, exc)
        self._adapt()
        return UnitOutcome(posted=res.posted, refused=res.refused, posts=res.posts)

    def _throttled(self) -> int:
        return int(getattr(self.client, "stats", {}).get("throttled", 0))

    def _adapt(self) -> None:
        """Halve the concurrency when the client met 429s since the last batch, else grow it."""
        throttled = self._throttled()
        if throttled > self._throttled_seen:
            self._throttled_seen = throttled
            self.limit.on_throttle()
        else:
            self.limit.on_success()
