"""Isolation: the messages of a merged POST that Monetate failed or refused, posted one by one.

PostRecords merges many messages' rows into one POST, so one message's payload that Monetate
keeps failing (a 503 for those rows, say) or refuses (413, 405 …) would take every message merged
with it down. :func:`isolate` posts each :class:`Held` message's own rows alone, so only the
messages whose own rows cannot be delivered are retried (or dead-lettered, for a refusal); the
others are posted.

It first makes sure Monetate itself is not down, at most one extra POST per failing schema: when
no POST was answered since the failure, a POST with no rows (``{"schema_rows": []}``, valid for the
Data API) asks; failing the same way, Monetate is down — posting stops and everything is retried.
When the rows of two different messages fail the same way while isolating, Monetate is failing
again (or both are bad): posting stops too, so an outage never costs a POST per message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from monetate_ingest.observability import logger
from monetate_ingest.records.failures import POST_REFUSED, Failure
from monetate_ingest.records.state import Msg, Refusal

if TYPE_CHECKING:
    from monetate_ingest.records.sending import Sender


@dataclass
class Held:
    """A merged payload Monetate failed (``UNAVAILABLE``) or refused (``REFUSED``), and its messages."""

    schema: str
    kind: Failure
    reason: str
    msgs: list[Msg]


def isolate(sender: Sender, held: list[Held]) -> None:
    """Post the held messages' rows one message at a time (see the module docstring)."""
    failures = 0
    for group in held:
        if sender.stopped is not None:
            return
        if group.kind is Failure.UNAVAILABLE and not sender.answered_since_unavailable:
            failed = sender.probe(group.schema)
            if failed is not None:
                sender.stop(f"{group.reason} — and for a POST of no rows too: Monetate itself is failing")
                return
        logger.info(
            "posting the messages of a failed POST one by one",
            extra={"schema": group.schema, "messages": len(group.msgs), "reason": group.reason},
        )
        for m in group.msgs:
            if sender.stopped is not None:
                return
            if m.decided:
                continue
            kind, reason = _post_alone(sender, group.schema, m)
            if kind is Failure.UNAVAILABLE:
                failures += 1
                m.retry(reason)
                if failures > 1:
                    sender.stop(f"{reason} — for the rows of another message too: Monetate itself is failing")
            elif kind is Failure.REFUSED:
                sender.refuse(m, Refusal(POST_REFUSED, reason))


def _post_alone(sender: Sender, schema: str, m: Msg) -> tuple[Failure | None, str]:
    """POST ``m``'s rows not yet posted (in order, within the batch limits); the failure that stopped
    them, if it was Monetate failing or refusing these rows (others are acted on by the sender)."""
    found: list[tuple[Failure, str]] = []

    def on_payload(kind: Failure, reason: str, msgs: list[Msg]) -> None:
        found.append((kind, reason))

    for batch in sender.batches(sender.remaining_tags(m)):
        delivery = sender.send(schema, batch)
        if delivery is None:
            break
        sender.handle(schema, delivery, on_payload)
        if found or m.decided or sender.stopped is not None:
            break
    return found[0] if found else (None, "")
