"""Posting units from a thread pool and finishing them in the order they were read.

:class:`Scheduler` submits each unit's batch (at most the adaptive limit in flight, see
:mod:`~monetate_ingest.ingest.concurrency`), hands finished units to ``complete`` strictly in
order, and remembers the units that finished early in ``done_beyond`` (the checkpoint's record of
them), so a resumed file never posts them again.

Per-key order (:mod:`~monetate_ingest.ingest.key_order`): a batch sharing a record key with a batch
still in flight is sent only once that batch has ended; rows of a record whose earlier row was
parked are parked behind it. Deadlines (:mod:`~monetate_ingest.ingest.budget`): every POST carries
the invocation's deadline; a batch that cannot finish in time is *left* — neither it nor anything
after it is completed, and the next invocation posts it again (unless nothing at all could be
finished in this invocation: then it is parked, so a file never loops on one slow batch).
Change-only sync (:mod:`~monetate_ingest.ingest.change_sync`): each batch's worker looks its keys
up, drops the unchanged rows and records the posted ones before the batch's keys are released.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from monetate_ingest.delivery.batching import Batch
from monetate_ingest.delivery.bisection import BisectResult, PartialDeliveryError, post_with_bisection
from monetate_ingest.ingest.budget import Budget
from monetate_ingest.ingest.change_sync import FileSync
from monetate_ingest.ingest.concurrency import AdaptiveLimit
from monetate_ingest.ingest.key_order import KeyOrder
from monetate_ingest.ingest.record_keys import KeyReader
from monetate_ingest.ingest.units import Unit, UnitOutcome
from monetate_ingest.monetate.exceptions import DeadlineExceededError, RateLimitedError

#: ``park(unit, error)`` → the unit's outcome once its undelivered rows are parked.
Park = Callable[[Unit, PartialDeliveryError], UnitOutcome]
#: ``park_rows(unit, batch)`` → rows parked now (rows of records parked earlier in the file).
ParkRows = Callable[[Unit, Batch], int]


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
        keys: KeyReader | None = None,
        park_rows: ParkRows | None = None,
        budget: Budget | None = None,
        sync: FileSync | None = None,
        post_limits: tuple[int, int] | None = None,
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
        #: Reads the record keys of a batch; None: no per-key order (no key field, dry run).
        self.keys = keys
        self.park_rows = park_rows
        self.order = KeyOrder()
        self.budget = budget if budget is not None else Budget(None)
        #: Change-only sync, run in each batch's worker (None or inactive: every row is posted).
        self.sync = sync if sync is not None and sync.active else None
        #: (rows, bytes) of one POST when sync is on: a unit is then a lookup group, whose kept
        #: rows are cut again into POSTs of this size.
        self.post_limits = post_limits
        if self.sync is not None:
            self.backlog = concurrency  # units are groups of batches: hold fewer of them
        #: A batch ran out of time: nothing more is sent or completed in this invocation.
        self.stopped = False
        self._left: set[int] = set()
        self._parked_early: dict[int, int] = {}
        self._completed = 0

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
        done = self.done_beyond.get(str(unit.seq))  # removed when the unit completes (job)
        if done is not None:
            unit.outcome = UnitOutcome.from_dict(done)  # finished by an earlier invocation
        elif unit.batch is not None and not self.dry_run:
            if self.stopped:
                return  # out of time: this unit is read again by the next invocation
            if self.keys is not None and not self._in_key_order(unit):
                return
            running = self._running()
            while len(running) >= self.limit.limit:
                wait(running, return_when=FIRST_COMPLETED)
                self.settle(block=False)
                running = self._running()
            if unit.batch is not None:
                unit.future = self._pool.submit(self._post, unit)
        self.inflight.append(unit)
        self.settle(block=False)

    def _in_key_order(self, unit: Unit) -> bool:
        """Wait for the batches in flight that hold this batch's keys; park the rows of records
        parked earlier. False: a batch waited for ran out of time, so this one is left too."""
        assert unit.batch is not None and self.keys is not None
        keys = self.keys.key_set(unit.batch.body)
        blockers = self.order.blockers(keys)
        if blockers:
            futures = [u.future for u in self.inflight if u.seq in blockers and u.future is not None]
            wait(futures)
            self.settle(block=False)  # their outcomes: parked keys, a deadline
            if self.stopped:
                return False
        positions = (
            self.order.must_park(self.keys.keys(unit.batch.encoded)) if self.order.parked & keys else []
        )
        if positions and self.park_rows is not None:
            batch = unit.batch
            parked = set(positions)
            behind = Batch.of(
                [batch.rows[i] for i in positions],
                [batch.lines[i] for i in positions],
                [batch.encoded[i] for i in positions],
            )
            self._parked_early[unit.seq] = self.park_rows(unit, behind)
            rest = [i for i in range(len(batch.lines)) if i not in parked]
            unit.batch = (
                Batch.of(None, [batch.lines[i] for i in rest], [batch.encoded[i] for i in rest])
                if rest
                else None
            )
            keys = self.keys.key_set(unit.batch.body) if unit.batch is not None else set()
        self.order.hold(unit.seq, keys)
        return True

    def settle(self, *, block: bool, drain: bool = False) -> None:
        """Finish units in order; record early finishers; then ``tick``.

        ``block`` waits for the oldest unit's post; ``drain`` waits for all of them.
        """
        inflight = self.inflight
        while inflight:
            head = inflight[0]
            if head.seq in self._left:
                break  # ran out of time: it and what follows are the next invocation's
            if head.outcome is None and head.future is not None and not head.future.done():
                if not (block or drain):
                    break
                wait([head.future])
                block = False
            if head.outcome is None:
                head.outcome = self._outcome(head)
                if head.outcome is None:
                    continue  # left (now in ``_left``)
            inflight.popleft()
            self._completed += 1
            self.complete(head)
        for u in inflight:  # finished early: remember for the checkpoint
            if u.future is not None and u.future.done() and u.outcome is None and u.seq not in self._left:
                u.outcome = self._outcome(u)
                if u.outcome is not None:
                    self.done_beyond[str(u.seq)] = u.outcome.to_dict()
        self.tick()

    def _running(self) -> list[Future[BisectResult]]:
        return [u.future for u in self.inflight if u.future is not None and not u.future.done()]

    # -- one batch --------------------------------------------------------------------------------

    def _post(self, unit: Unit) -> BisectResult:
        """One unit's batch to Monetate (bisected on 400); with change-only sync the unit is a
        lookup group: its unchanged rows are dropped, the rest posted in batches of the configured
        size, and each batch's accepted rows recorded in the ledger."""
        batch = unit.batch
        assert batch is not None
        sync = self.sync
        if sync is None:
            return self._post_one(batch)
        plan = unit.plan = sync.plan(batch)
        if plan.batch is None:
            return BisectResult()
        limits = self.post_limits or (len(plan.batch), len(plan.batch.body))
        pieces = sync.post_batches(plan.batch, *limits)
        done = BisectResult()
        for i, piece in enumerate(pieces):
            try:
                result = self._post_one(piece)
            except PartialDeliveryError as exc:
                sync.record(plan, exc.result.posted)
                raise PartialDeliveryError(
                    done.add(exc.result), exc.pending + pieces[i + 1 :], exc.cause
                ) from exc
            sync.record(plan, result.posted)
            done = done.add(result)
        return done

    def _post_one(self, batch: Batch) -> BisectResult:
        """One POST batch (bisected on 400), timed for the ``PostLatency`` metric."""
        started = time.perf_counter()
        try:
            return post_with_bisection(self.client, self.schema, batch, deadline=self.budget.post_deadline())
        finally:
            seconds = time.perf_counter() - started
            self.post_ms.append(seconds * 1000)
            self.budget.observe(seconds)

    def _outcome(self, unit: Unit) -> UnitOutcome | None:
        """Posted/refused/parked for a finished unit (parks what could not be delivered); None
        when the unit ran out of time and is left for the next invocation."""
        outcome = self._result(unit)
        if outcome is not None:
            outcome.parked += self._parked_early.pop(unit.seq, 0)
            if unit.plan is not None:
                outcome.unchanged, outcome.sync = unit.plan.skipped, unit.plan.counts
            self.order.release(unit.seq, parked=outcome.parked > 0)
        return outcome

    def _result(self, unit: Unit) -> UnitOutcome | None:
        batch = unit.batch
        if batch is None:
            return UnitOutcome()
        if unit.future is None:  # dry run: what would have been posted
            if self.sync is not None:
                unit.plan = self.sync.plan(batch)
                return UnitOutcome(posted=list(unit.plan.batch.lines) if unit.plan.batch else [])
            return UnitOutcome(posted=list(batch.lines))
        try:
            res = unit.future.result()
        except PartialDeliveryError as exc:
            # Out of time: left for the next invocation — unless nothing at all could be finished
            # in this one (then it is parked below, so the file never loops on one slow batch).
            earlier = self._completed or (self.inflight and self.inflight[0] is not unit)
            if isinstance(exc.cause, DeadlineExceededError) and earlier:
                self.stopped = True
                self._left.add(unit.seq)
                return None
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
