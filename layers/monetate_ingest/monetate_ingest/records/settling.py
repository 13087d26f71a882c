"""Settling a batch: each message's :class:`Outcome`, its dead letter, its idempotency record, metrics.

:class:`Settler` turns what is known of each message (:class:`Msg`) into one outcome: posted,
posted partly (its refused rows dead-lettered in an envelope of their own), dead-lettered whole
(the original body, byte for byte), a duplicate, or retried; identical messages of the batch share
their first copy's fate. Its idempotency claim is then completed or released — deferred, all
records written in parallel at the end — and the batch's metrics go out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import (
    ROWS_REJECTED,
    DeadLetter,
    RowRefusal,
    describe_refusals,
    refused_rows_letter,
)
from monetate_ingest.records.state import Msg, Refusal, describe_error, parallel
from monetate_ingest.records.types import Outcome

if TYPE_CHECKING:
    from monetate_ingest.records.types import BatchOutcome, PostRecordsDeps


class Settler:
    """Fills one invocation's :class:`BatchOutcome` (``posts`` and ``revoked`` already set)."""

    def __init__(self, deps: PostRecordsDeps, outcome: BatchOutcome) -> None:
        self.deps = deps
        self.outcome = outcome
        self._records: list[Callable[[], None]] = []  # idempotency writes, run in parallel at the end

    def settle(self, msgs: list[Msg]) -> BatchOutcome:
        outcome = self.outcome
        counts: Counter[Outcome] = Counter()
        rows_posted: dict[str, int] = {}
        rows_rejected: dict[str, int] = {}
        for m in msgs:
            if m.twin is not None:
                continue
            result, failure = self._settle_one(m, rows_posted, rows_rejected)
            if failure is not None:
                outcome.failures[m.message_id] = failure
            else:
                outcome.results[m.message_id] = result
            counts[result] += 1
        for m in msgs:  # identical messages share their first copy's fate (one dead letter at most)
            if m.twin is not None:
                first = msgs[m.twin]
                if first.message_id in outcome.failures:
                    outcome.failures[m.message_id] = outcome.failures[first.message_id]
                else:
                    outcome.results[m.message_id] = Outcome.DUPLICATE
                logger.info(
                    "message outcome",
                    extra={"message_id": m.message_id, "outcome": "twin", "twin_of": first.message_id},
                )
        parallel(lambda op: op(), self._records, self.deps.idempotency_concurrency)
        self._emit_metrics(outcome, counts, rows_posted, rows_rejected)
        logger.info(
            "batch done",
            extra={
                "messages": len(msgs),
                "posts": outcome.posts,
                "outcomes": {str(k): v for k, v in counts.items()},
                "retried": len(outcome.failures),
            },
        )
        return outcome

    def _settle_one(
        self, m: Msg, rows_posted: dict[str, int], rows_rejected: dict[str, int]
    ) -> tuple[Outcome, str | None]:
        log: dict[str, Any] = {"message_id": m.message_id, "schema": m.schema}
        if self.outcome.revoked:
            if (
                m.claimed
                and m.posted
                and not m.refusals
                and len(m.posted) == len(m.envelope.rows if m.envelope else [])
            ):
                self._complete(m)  # a redelivery must not post these rows again
            else:
                self._release(m, "key revoked")
            logger.info("message outcome", extra={**log, "outcome": "retried", "reason": "key revoked"})
            return Outcome.RETRIED, "Monetate API key revoked (403)"
        if m.skipped:
            logger.info(
                "message outcome", extra={**log, "outcome": "duplicate", "reason": "content posted before"}
            )
            return Outcome.DUPLICATE, None
        rows_total = len(m.envelope.rows) if m.envelope else 0
        if m.transient is None and m.permanent is None and len(m.posted) + len(m.refusals) < rows_total:
            m.transient = "posting stopped before this message's rows were delivered"
        if m.transient is not None:
            self._release(m, m.transient)
            logger.info(
                "message outcome",
                extra={
                    **log,
                    "outcome": "retried",
                    "reason": m.transient,
                    "rows_posted_before_failure": len(m.posted),
                },
            )
            return Outcome.RETRIED, m.transient
        assert m.permanent is not None or m.envelope is not None
        total = len(m.envelope.rows) if m.envelope else 0
        if m.permanent is None and not m.posted:
            # Every valid row was refused by Monetate (400): the whole message is permanent.
            reason = describe_refusals(_sorted(m.refusals), total=total, posted=0)
            m.permanent = Refusal(ROWS_REJECTED, reason)
        if m.permanent is not None:
            letter = DeadLetter(m.message_id, m.body, m.permanent.error_type, m.permanent.error_message)
        elif m.refusals:
            assert m.envelope is not None
            letter = refused_rows_letter(m.message_id, m.envelope, _sorted(m.refusals), posted=len(m.posted))
        else:
            self._complete(m)
            rows_posted[m.schema or ""] = rows_posted.get(m.schema or "", 0) + len(m.posted)
            logger.debug("message outcome", extra={**log, "outcome": "posted", "rows": len(m.posted)})
            return Outcome.POSTED, None
        if m.posted:
            rows_posted[m.schema or ""] = rows_posted.get(m.schema or "", 0) + len(m.posted)
        try:
            self.deps.dead_letters.send(letter)
        except Exception as exc:  # never lose it: SQS redelivers, maxReceiveCount ends in the DLQ
            self._release(m, "dead letter not sent")
            logger.error(
                "could not send to the DLQ; the message will be retried",
                extra={**log, "error_type": letter.error_type, "error": describe_error(exc)},
            )
            return Outcome.RETRIED, f"dead letter not sent: {describe_error(exc)}"
        if m.posted:
            self._complete(m)  # its valid rows are stored; the refused ones are in the DLQ
        else:
            self._release(m, "dead-lettered")  # a redrive after a fix must be processed again
        if m.schema and m.refusals:
            rows_rejected[m.schema] = rows_rejected.get(m.schema, 0) + len(m.refusals)
        logger.info(
            "message outcome",
            extra={
                **log,
                "outcome": "dead_lettered" if not m.posted else "posted_partly",
                "error_type": letter.error_type,
                "rows_posted": len(m.posted),
                "rows_refused": len(m.refusals),
                "refused": [{"index": r.index, "field": r.field} for r in _sorted(m.refusals)][:50],
            },
        )
        return (Outcome.DEAD_LETTERED if not m.posted else Outcome.POSTED_PARTLY), None

    def _complete(self, m: Msg) -> None:
        """Record the content as done (deferred: all records are written in parallel at the end)."""
        if not m.claimed or m.identity is None:
            return
        identity, result = (
            m.identity,
            {
                "message_id": m.message_id,
                "rows_posted": len(m.posted),
                "rows_refused": len(m.refusals),
            },
        )

        def complete() -> None:
            try:
                self.deps.claims.complete(identity, result)
            except Exception as exc:  # the rows are stored; at worst a redelivery posts them again
                logger.warning(
                    "could not record the message as done",
                    extra={"message_id": m.message_id, "error": describe_error(exc)},
                )

        self._records.append(complete)

    def _release(self, m: Msg, why: str) -> None:
        """Delete our claim so a redelivery (or a redrive) is processed again (deferred too)."""
        if not m.claimed or m.identity is None:
            return
        identity = m.identity

        def release() -> None:
            try:
                self.deps.claims.release(identity, RuntimeError(why))
            except Exception as exc:  # the claim expires with the invocation's remaining time
                logger.warning(
                    "could not release the idempotency claim",
                    extra={"message_id": m.message_id, "error": describe_error(exc)},
                )

        self._records.append(release)

    def _emit_metrics(
        self,
        outcome: BatchOutcome,
        counts: Counter[Outcome],
        rows_posted: dict[str, int],
        rows_rejected: dict[str, int],
    ) -> None:
        sink = self.deps.metrics
        posted = counts[Outcome.POSTED] + counts[Outcome.POSTED_PARTLY]
        dead = counts[Outcome.DEAD_LETTERED] + counts[Outcome.POSTED_PARTLY]
        for name, value in (
            ("MessagesPosted", posted),
            ("MessagesDeadLettered", dead),
            ("MessagesRetried", len(outcome.failures)),
            ("MessagesDuplicate", counts[Outcome.DUPLICATE]),
        ):
            sink.count(name, value)
        for schema, n in rows_posted.items():
            sink.count("RowsPosted", n, schema=schema)
        for schema, n in rows_rejected.items():
            sink.count("RowsRejected", n, schema=schema)


def _sorted(refusals: dict[int, RowRefusal]) -> list[RowRefusal]:
    return [refusals[i] for i in sorted(refusals)]
