"""Settling a batch: each message's :class:`Outcome`, its dead letters, its idempotency record, metrics.

:class:`Settler` turns what is known of each message (:class:`Msg`) into one outcome: posted,
posted partly (its refused rows dead-lettered in envelopes of their own), dead-lettered whole (the
original body, byte for byte), a duplicate, or retried; identical messages of the batch share
their first copy's fate. A message that fails on its last receive (``receive_limit``: the queue's
``maxReceiveCount``) is dead-lettered here with ``error_type`` ``retries_exhausted`` and the last
reason, rather than moved by SQS without one. The dead letters go out in parallel (a letter that
cannot be sent leaves its message to SQS); the idempotency claims are then completed or released,
in parallel too, and the batch's metrics go out. Every retried message is logged with its id, its
receive count and the reason, so a message SQS moves to the DLQ can always be explained.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import ROWS_REJECTED, DeadLetter, RowRefusal, describe_refusals
from monetate_ingest.records.idempotency import DeferredRecords
from monetate_ingest.records.letters import LetterTooLargeError, refused_rows, whole
from monetate_ingest.records.state import Msg, Refusal, describe_error, parallel
from monetate_ingest.records.types import Outcome

if TYPE_CHECKING:
    from monetate_ingest.records.types import BatchOutcome, PostRecordsDeps

RETRIES_EXHAUSTED = "retries_exhausted"
_HELD_ELSEWHERE = "another invocation is processing the same content"


@dataclass
class Verdict:
    """One message's outcome before its letters are sent: the letters, the retry reason."""

    m: Msg
    outcome: Outcome
    reason: str | None = None  # why it is retried
    letters: list[DeadLetter] = field(default_factory=list)

    @property
    def error_type(self) -> str | None:
        return self.letters[0].error_type if self.letters else None


class Settler:
    """Fills one invocation's :class:`BatchOutcome` (``posts`` and ``revoked`` already set)."""

    def __init__(
        self, deps: PostRecordsDeps, outcome: BatchOutcome, *, receive_limit: int | None = None
    ) -> None:
        self.deps = deps
        self.outcome = outcome
        self.receive_limit = receive_limit
        self._records = DeferredRecords(deps.claims, deps.idempotency_concurrency)

    def settle(self, msgs: list[Msg]) -> BatchOutcome:
        verdicts = [self._safely(m) for m in msgs if m.twin is None]
        for v in verdicts:
            self._last_receive(v)
        self._send_letters([v for v in verdicts if v.letters])
        counts: Counter[Outcome] = Counter()
        rows_posted: Counter[str] = Counter()
        rows_rejected: Counter[str] = Counter()
        rows_unchanged: Counter[str] = Counter()
        for v in verdicts:
            self._record(v)
            counts[v.outcome] += 1
            if v.outcome in (Outcome.POSTED, Outcome.POSTED_PARTLY):
                rows_posted[v.m.schema or ""] += len(v.m.posted)
                rows_unchanged[v.m.schema or ""] += len(v.m.unchanged)
            if v.outcome in (Outcome.POSTED_PARTLY, Outcome.DEAD_LETTERED) and v.m.schema:
                rows_rejected[v.m.schema] += len(v.m.refusals)
            if v.outcome is Outcome.RETRIED:
                self.outcome.failures[v.m.message_id] = v.reason or "retried"
            else:
                self.outcome.results[v.m.message_id] = v.outcome
        self._twins(msgs)
        self._records.flush()
        self._emit_metrics(counts, rows_posted, rows_rejected, rows_unchanged)
        logger.info(
            "batch done",
            extra={
                "messages": len(msgs),
                "posts": self.outcome.posts,
                "outcomes": {str(k): v for k, v in counts.items()},
                "retried": len(self.outcome.failures),
            },
        )
        return self.outcome

    # --- one message --------------------------------------------------------------------------

    def _safely(self, m: Msg) -> Verdict:
        try:
            return self._verdict(m)
        except LetterTooLargeError as exc:  # nothing is cut from a body: SQS keeps the message
            logger.error(
                "the message cannot be dead-lettered within SQS's size limit; it is left to SQS, which "
                "moves it whole to the DLQ after maxReceiveCount receives",
                extra={"message_id": m.message_id, "reason": _why(m), "error": describe_error(exc)},
            )
            return Verdict(m, Outcome.RETRIED, f"{_why(m)}; not dead-lettered: {exc}")
        except Exception as exc:  # a bug must not sink the batch: this message is retried
            logger.exception(
                "settling a message failed unexpectedly; it will be retried",
                extra={"message_id": m.message_id, "error_type": type(exc).__name__},
            )
            return Verdict(m, Outcome.RETRIED, f"internal error while settling ({describe_error(exc)})")

    def _verdict(self, m: Msg) -> Verdict:
        if self.outcome.revoked:
            return Verdict(m, Outcome.RETRIED, "Monetate API key revoked (403)")
        if m.skipped:
            return Verdict(m, Outcome.DUPLICATE)
        if m.permanent is None and m.transient is None and m.stored + len(m.refusals) < m.rows_total:
            m.transient = "posting stopped before this message's rows were delivered"
        if m.transient is not None:
            return Verdict(m, Outcome.RETRIED, m.transient)
        if m.permanent is None and not m.stored:  # every valid row was refused by Monetate (400)
            reason = describe_refusals(_sorted(m), total=m.rows_total, posted=0)
            m.permanent = Refusal(ROWS_REJECTED, reason)
        if m.permanent is not None:
            letters = whole(
                m.message_id, m.body, m.envelope, m.permanent.error_type, m.permanent.error_message
            )
            return Verdict(m, Outcome.DEAD_LETTERED, letters=letters)
        if m.refusals:
            assert m.envelope is not None
            letters = refused_rows(m.message_id, m.envelope, _sorted(m), posted=len(m.posted))
            return Verdict(m, Outcome.POSTED_PARTLY, letters=letters)
        return Verdict(m, Outcome.POSTED)

    def _last_receive(self, v: Verdict) -> None:
        """On its last receive a failing message is dead-lettered here, with the reason."""
        m = v.m
        limit = self.receive_limit
        if (
            v.outcome is not Outcome.RETRIED
            or limit is None
            or m.receive_count < limit
            or self.outcome.revoked  # the contract: nothing is dead-lettered on a revoked key
            or v.reason == _HELD_ELSEWHERE
        ):
            return
        reason = (
            f"not delivered after {m.receive_count} receives (the queue's maxReceiveCount); the last "
            f"attempt failed: {v.reason}. Redrive once the cause is fixed."
        )
        try:
            letters = whole(m.message_id, m.body, m.envelope, RETRIES_EXHAUSTED, reason)
        except Exception as exc:
            logger.error(
                "cannot dead-letter the message on its last receive; SQS will move it",
                extra={"message_id": m.message_id, "reason": v.reason, "error": describe_error(exc)},
            )
            return
        v.outcome, v.letters = Outcome.DEAD_LETTERED, letters

    def _send_letters(self, verdicts: list[Verdict]) -> None:
        def send_all(v: Verdict) -> Exception | None:
            try:
                for letter in v.letters:
                    self.deps.dead_letters.send(letter)
            except Exception as exc:  # never lose it: SQS redelivers, maxReceiveCount ends in the DLQ
                return exc
            return None

        for v, error in zip(
            verdicts, parallel(send_all, verdicts, self.deps.idempotency_concurrency), strict=True
        ):
            if error is not None:
                logger.error(
                    "could not send to the DLQ; the message will be retried",
                    extra={
                        "message_id": v.m.message_id,
                        "error_type": v.error_type,
                        "error": describe_error(error),
                    },
                )
                reason = f"dead letter ({v.error_type}) not sent: {describe_error(error)}"
                v.outcome, v.reason, v.letters = Outcome.RETRIED, reason, []

    def _record(self, v: Verdict) -> None:
        m = v.m
        log: dict[str, Any] = {"message_id": m.message_id, "schema": m.schema, "outcome": str(v.outcome)}
        if v.outcome is Outcome.RETRIED:
            done = m.claimed and m.posted and not m.refusals and m.stored == m.rows_total
            if self.outcome.revoked and done:
                self._complete(m)  # a redelivery must not post these rows again
            else:
                self._release(m, v.reason or "retried")
            logger.warning(
                "message will be retried",
                extra={
                    **log,
                    "reason": v.reason,
                    "receive_count": m.receive_count,
                    "rows_posted": len(m.posted),
                },
            )
        elif v.outcome is Outcome.DUPLICATE:
            logger.info("message outcome", extra={**log, "reason": "content posted before"})
        elif v.outcome is Outcome.POSTED:
            self._complete(m)
            logger.debug(
                "message outcome", extra={**log, "rows": len(m.posted), "rows_unchanged": len(m.unchanged)}
            )
        else:
            if m.stored and v.error_type != RETRIES_EXHAUSTED:
                self._complete(m)  # its valid rows are stored; the refused ones are in the DLQ
            else:
                self._release(m, "dead-lettered")  # a redrive after a fix must be processed again
            logger.info(
                "message outcome",
                extra={
                    **log,
                    "error_type": v.error_type,
                    "letters": len(v.letters),
                    "rows_posted": len(m.posted),
                    "rows_refused": len(m.refusals),
                    "refused": [{"index": r.index, "field": r.field} for r in _sorted(m)][:50],
                },
            )

    def _twins(self, msgs: list[Msg]) -> None:
        """Identical messages share their first copy's fate (one dead letter at most)."""
        outcome = self.outcome
        for m in msgs:
            if m.twin is None:
                continue
            first = msgs[m.twin]
            if first.message_id in outcome.failures:
                outcome.failures[m.message_id] = outcome.failures[first.message_id]
            else:
                outcome.results[m.message_id] = Outcome.DUPLICATE
            logger.info(
                "message outcome",
                extra={"message_id": m.message_id, "outcome": "twin", "twin_of": first.message_id},
            )

    def _complete(self, m: Msg) -> None:
        if m.claimed and m.identity is not None:
            result = {
                "message_id": m.message_id,
                "rows_posted": len(m.posted),
                "rows_refused": len(m.refusals),
            }
            self._records.complete(m.message_id, m.identity, result)

    def _release(self, m: Msg, why: str) -> None:
        if m.claimed and m.identity is not None:
            self._records.release(m.message_id, m.identity, why)

    def _emit_metrics(
        self,
        counts: Counter[Outcome],
        rows_posted: Counter[str],
        rows_rejected: Counter[str],
        rows_unchanged: Counter[str],
    ) -> None:
        sink = self.deps.metrics
        for name, value in (
            ("MessagesPosted", counts[Outcome.POSTED] + counts[Outcome.POSTED_PARTLY]),
            ("MessagesDeadLettered", counts[Outcome.DEAD_LETTERED] + counts[Outcome.POSTED_PARTLY]),
            ("MessagesRetried", len(self.outcome.failures)),
            ("MessagesDuplicate", counts[Outcome.DUPLICATE]),
        ):
            sink.count(name, value)
        for schema, n in rows_posted.items():
            sink.count("RowsPosted", n, schema=schema)
        for schema, n in rows_rejected.items():
            sink.count("RowsRejected", n, schema=schema)
        for schema, n in rows_unchanged.items():
            if n:
                sink.count("RowsUnchanged", n, schema=schema)


def _sorted(m: Msg) -> list[RowRefusal]:
    return [m.refusals[i] for i in sorted(m.refusals)]


def _why(m: Msg) -> str:
    """The reason a message was to be dead-lettered (for the logs when it cannot be)."""
    if m.permanent is not None:
        return f"{m.permanent.error_type}: {m.permanent.error_message[:500]}"
    return f"{len(m.refusals)} of {m.rows_total} rows refused"
