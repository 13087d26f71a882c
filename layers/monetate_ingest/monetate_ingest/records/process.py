"""Handling one SQS batch: every message decided, the merged rows posted, each outcome settled.

:func:`process_messages` runs the stages in order — :mod:`.intake` (parse, schema lookups,
coercion, idempotency claims), :class:`ChangeSync` (skips the rows the ledger says Monetate holds),
:class:`RowPoster` (merged POSTs, isolation of failing payloads), :class:`ChangeSync` again
(records the rows Monetate accepted), :class:`Settler` (outcomes, dead letters, records, metrics)
— within the invocation's :class:`Budget`, and returns a :class:`BatchOutcome` with an outcome for
every message. Only a revoked key (403) changes the batch as a whole: no further Monetate call,
every message retried.

Idempotency and redelivery (:mod:`monetate_ingest.records.idempotency`): a message's completion is
recorded only once *all* its rows are posted (or dead-lettered). A message that fails part-way — a
transient error after some of its rows were stored — is retried whole, so those rows are posted
again: delivery is at-least-once, exactly-once in effect for datasets with a unique key (Monetate
upserts them). Tracking posted row indexes per message would need a read-modify-write of the
record after every POST for a window that only a 5xx storm in the middle of a merged batch opens;
not worth the cost and the extra failure modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.observability import logger
from monetate_ingest.records.change_sync import ChangeSync
from monetate_ingest.records.deadline import Budget
from monetate_ingest.records.intake import Intake, parse
from monetate_ingest.records.posting import RowPoster
from monetate_ingest.records.settling import Settler
from monetate_ingest.records.state import Msg
from monetate_ingest.records.types import BatchOutcome, PostRecordsDeps


@dataclass(frozen=True)
class Incoming:
    """One SQS message as the batch delivers it (``sent_time``: its ``SentTimestamp`` in epoch seconds)."""

    message_id: str
    body: str
    receive_count: int = 1
    sent_time: float | None = None


def process_messages(
    messages: Sequence[Incoming | tuple[str, str]],
    deps: PostRecordsDeps,
    *,
    budget: Budget | None = None,
    receive_limit: int | None = None,
) -> BatchOutcome:
    """Decide the fate of every message; post, dead-letter and record as needed.

    ``budget``: the invocation's time (none: no deadline); ``receive_limit``: the queue's
    ``maxReceiveCount`` (a message failing on that receive is dead-lettered with its reason).
    """
    budget = budget if budget is not None else Budget.unlimited()
    incoming = [m if isinstance(m, Incoming) else Incoming(*m) for m in messages]
    msgs = [Msg(i, m.message_id, m.body, m.receive_count, m.sent_time) for i, m in enumerate(incoming)]
    parse(msgs)
    intake = Intake(deps, lambda: _remaining_ms(budget))
    poster = RowPoster(deps, budget)
    changes: ChangeSync | None = None
    revoked = False
    try:
        specs = intake.resolve_schemas(msgs)
        coerced = intake.coerce(msgs, specs)
        started = budget.clock()
        intake.claim(msgs)
        claims = budget.clock() - started
        changes = ChangeSync(deps, specs, budget)
        coerced = changes.classify(msgs, coerced)
        # a DLQ round, a records round, and ledger writes about as long as the lookups
        budget.expect_settling(2 * claims + changes.lookup_seconds)
        poster.post(msgs, coerced)
    except KeyRevokedError:
        revoked = True
        deps.metrics.count("KeyRevoked", 1)
        logger.error(
            "Monetate answered 403 (API key revoked): stopped; every message of the batch will be retried",
            extra={"messages": len(msgs)},
        )
    if changes is not None:
        changes.record(msgs)  # what Monetate accepted, even before a 403
    outcome = BatchOutcome(posts=poster.posts, revoked=revoked)
    return Settler(deps, outcome, receive_limit=receive_limit).settle(msgs)


def _remaining_ms(budget: Budget) -> int | None:
    left = budget.left()
    return None if left is None else max(0, int(left * 1000))
