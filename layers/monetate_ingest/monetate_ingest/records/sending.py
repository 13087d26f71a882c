"""The POSTs of one PostRecords invocation and what they teach: :class:`Sender`.

Every row to post gets a tag (its position in ``rows``: its message, its index there, its JSON),
so what a POST reports — rows stored, rows Monetate refused with 400 (found by bisection) — lands
on the message it came from. The sender counts the POSTs, times them for the :class:`Budget`,
remembers whether Monetate failed a payload and answered since, and once posting must stop
(``stopped``: throttled, time up, Monetate down …) makes no further POST. :meth:`Sender.handle` is
the one place a failed POST's :class:`Failure` is acted on; what to do with a payload that Monetate
fails or refuses (``UNAVAILABLE`` / ``REFUSED``) is left to the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.delivery.bisection import Delivery, deliver
from monetate_ingest.monetate.exceptions import (
    KeyRevokedError,
    MonetateApiError,
    TransientApiError,
    UnknownSchemaError,
)
from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import UNKNOWN_SCHEMA, RowRefusal
from monetate_ingest.records.failures import Failure, classify, stop_reason
from monetate_ingest.records.state import Msg, Refusal, describe_error

if TYPE_CHECKING:
    from monetate_ingest.records.deadline import Budget
    from monetate_ingest.records.types import PostRecordsDeps

#: ``(kind, reason, messages of the payload)`` → what the caller does with such a payload.
OnPayload = Callable[[Failure, str, list[Msg]], None]
EMPTY_BODY = b'{"schema_rows":[]}'


@dataclass(frozen=True, slots=True)
class Row:
    """One row to post: its message (``pos``), its index in the message's rows, its JSON."""

    pos: int
    index: int
    data: bytes


class Sender:
    """One invocation's POSTs (see the module docstring)."""

    def __init__(self, deps: PostRecordsDeps, budget: Budget, msgs: list[Msg]) -> None:
        self.deps = deps
        self.budget = budget
        self.by_pos = {m.pos: m for m in msgs}
        self.rows: list[Row] = []
        self.tags_of: dict[int, list[int]] = {}  # message pos → its tags, in row order
        self.posts = 0
        self.stopped: str | None = None
        self.unavailable: str | None = None  # the first payload Monetate failed (5xx, timeout …)
        self.answered_since_unavailable = False
        self.gone: dict[str, Refusal] = {}  # schemas a POST found removed (404, confirmed by a re-read)
        self._reread: set[str] = set()

    # --- rows and batches -------------------------------------------------------------------

    def add_row(self, m: Msg, index: int, data: bytes) -> int:
        tag = len(self.rows)
        self.rows.append(Row(m.pos, index, data))
        self.tags_of.setdefault(m.pos, []).append(tag)
        m.queued.add(index)
        return tag

    def owner(self, tag: int) -> Msg:
        return self.by_pos[self.rows[tag].pos]

    def msgs_of(self, tags: list[int]) -> list[Msg]:
        """The messages these rows belong to, each once, in order."""
        return list({self.rows[t].pos: self.owner(t) for t in tags}.values())

    def remaining_tags(self, m: Msg) -> list[int]:
        """The tags of ``m``'s rows neither posted nor refused yet, in order."""
        return [
            t
            for t in self.tags_of.get(m.pos, [])
            if self.rows[t].index not in m.posted and self.rows[t].index not in m.refusals
        ]

    def batch_of(self, tags: list[int]) -> Batch:
        return Batch.of(None, tags, [self.rows[t].data for t in tags])

    def batches(self, tags: list[int]) -> list[Batch]:
        """``tags`` cut into POST bodies by the batch limits (in order)."""
        batcher = Batcher(self.deps.rows.batch_max_rows, self.deps.rows.batch_max_bytes)
        out = [b for t in tags if (b := batcher.add_encoded(t, self.rows[t].data)) is not None]
        last = batcher.flush()
        return out + ([last] if last is not None else [])

    # --- POSTs --------------------------------------------------------------------------------

    def send(self, schema: str, batch: Batch) -> Delivery | None:
        """POST ``batch`` (bisected on 400) and apply what it stored or refused to the messages;
        None, without a POST, once posting has stopped or no POST may start any more."""
        if not self._may_post():
            return None
        started = self.budget.clock()
        delivery = deliver(self.deps.client, schema, batch, deadline=self.budget.post_deadline())
        self.budget.observe_post((self.budget.clock() - started) / max(delivery.posts, 1))
        self.posts += delivery.posts
        for tag in delivery.posted:
            self.owner(tag).posted.add(self.rows[tag].index)
        for tag, reason in delivery.refused:
            index = self.rows[tag].index
            self.owner(tag).refusals[index] = RowRefusal(index, reason)
        refusal = isinstance(delivery.error, MonetateApiError) and not isinstance(
            delivery.error, TransientApiError
        )
        if delivery.error is None or delivery.posted or delivery.refused or refusal:
            self._answered()  # Monetate is up: it stored, or answered with a refusal
        return delivery

    def probe(self, schema: str) -> Failure | None:
        """POST no rows (``{"schema_rows": []}``, which the Data API accepts): None when Monetate
        answered it (it is up), else the failure's kind (``STOP`` also when no POST may start)."""
        if not self._may_post():
            return Failure.STOP
        started = self.budget.clock()
        self.posts += 1
        try:
            self.deps.client.post_body(schema, EMPTY_BODY, deadline=self.budget.post_deadline())
        except Exception as exc:
            kind = classify(exc, out_of_time=self.budget.out_of_time())
            if kind is Failure.REVOKED:
                raise
            if kind in (Failure.UNAVAILABLE, Failure.STOP, Failure.BUG):
                if kind is Failure.STOP:
                    self.stop(stop_reason(exc, out_of_time=self.budget.out_of_time()))
                return kind
        finally:
            self.budget.observe_post(self.budget.clock() - started)
        self._answered()
        return None

    def _may_post(self) -> bool:
        if self.stopped is not None:
            return False
        if not self.budget.may_start():
            self.stop("the invocation's time was nearly up; the rows not yet posted are left to SQS")
            return False
        return True

    def _answered(self) -> None:
        if self.unavailable is not None:
            self.answered_since_unavailable = True

    # --- what a failed POST means ------------------------------------------------------------

    def handle(self, schema: str, delivery: Delivery, on_payload: OnPayload) -> None:
        """Act on ``delivery.error`` (see :mod:`monetate_ingest.records.failures`)."""
        exc = delivery.error
        if exc is None:
            return
        out_of_time = self.budget.out_of_time()
        kind = classify(exc, out_of_time=out_of_time)
        msgs = self.msgs_of(delivery.pending_tags)
        if kind is Failure.REVOKED:
            raise exc
        if kind is Failure.STOP:
            self.stop(stop_reason(exc, out_of_time=out_of_time))
        elif kind is Failure.BUG:
            reason = f"internal error while posting ({describe_error(exc)})"
            logger.exception(
                "posting failed on an unexpected error; its messages will be retried",
                exc_info=exc,
                extra={"schema": schema, "message_ids": [m.message_id for m in msgs][:100]},
            )
            for m in msgs:
                m.retry(reason)
        elif kind is Failure.SCHEMA_GONE:
            self._schema_gone(schema, delivery, msgs, on_payload)
        else:
            if kind is Failure.UNAVAILABLE and self.unavailable is None:
                self.unavailable, self.answered_since_unavailable = describe_error(exc), False
            on_payload(
                kind,
                f"Monetate unavailable: {describe_error(exc)}"
                if kind is Failure.UNAVAILABLE
                else f"Monetate refused the POST: {describe_error(exc)}",
                msgs,
            )

    def _schema_gone(self, schema: str, delivery: Delivery, msgs: list[Msg], on_payload: OnPayload) -> None:
        """404 on a POST: re-read the schema once; gone → its messages refused as ``unknown_schema``;
        still there → the rows are posted once more (a second 404 refuses them)."""
        if schema in self._reread:
            on_payload(
                Failure.REFUSED,
                f"Monetate answered 404 to POST /data/{schema}/ although the "
                f"schema exists: {describe_error(delivery.error or Exception())}",
                msgs,
            )
            return
        self._reread.add(schema)
        try:
            self.deps.schemas.refresh(schema)
        except KeyRevokedError:
            raise
        except UnknownSchemaError as exc:
            refusal = Refusal(UNKNOWN_SCHEMA, f"the schema was removed while its rows were posted: {exc}")
            self.gone[schema] = refusal
            for m in msgs:
                self.refuse(m, refusal)
            return
        except Exception as exc:
            for m in msgs:
                m.retry(
                    f"Monetate answered 404 to the POST and the schema could not be re-read: "
                    f"{describe_error(exc)}"
                )
            return
        for batch in delivery.pending:
            again = self.send(schema, batch)
            if again is None:
                return
            self.handle(schema, again, on_payload)

    # --- decisions ----------------------------------------------------------------------------

    def refuse(self, m: Msg, refusal: Refusal) -> None:
        """``m``'s rows not yet posted will never be: the whole message when none was posted (its
        original body dead-lettered), else those rows (an envelope of them dead-lettered)."""
        if not m.posted:
            if m.refusals:  # rows refused earlier (coercion, 400) are in the same body: say so
                others = "; ".join(f"rows[{i}]: {r.reason}" for i, r in sorted(m.refusals.items())[:5])
                refusal = Refusal(refusal.error_type, f"{refusal.error_message}; also {others}")
            if m.permanent is None:
                m.permanent = refusal
            return
        for t in self.remaining_tags(m):
            index = self.rows[t].index
            m.refusals[index] = RowRefusal(index, refusal.error_message)

    def stop(self, reason: str) -> None:
        """No further POST in this invocation; what was not posted is retried with ``reason``."""
        if self.stopped is None:
            self.stopped = reason
            logger.warning(
                "posting stopped; the messages not yet posted will be retried", extra={"reason": reason}
            )

    def finish(self) -> None:
        """Every claimed message with rows neither posted nor refused gets its fate."""
        for m in self.by_pos.values():
            if not m.claimed or m.decided or not self.remaining_tags(m):
                continue
            gone = self.gone.get(m.schema or "")
            if gone is not None:
                self.refuse(m, gone)
            else:
                m.retry(self.stopped or "posting stopped before this message's rows were delivered")
