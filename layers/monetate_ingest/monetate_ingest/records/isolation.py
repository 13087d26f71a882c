"""Isolation: the messages of a merged POST that Monetate failed or refused, split until each fate is known.

PostRecords merges many messages' rows into one POST, so one message's payload that Monetate keeps
failing (a 503 for those rows, say) or refuses (413, 405 …) would take every message merged with
it down. :func:`isolate` splits each :class:`Held` group by message — in halves of whole messages,
each half merged again — and goes on into the half that fails, so only the messages whose own
rows cannot be delivered are retried (or dead-lettered, for a refusal); the others are posted. One
bad message among n costs about 2·log2(n) POSTs; a message's rows are never split between halves.

It first makes sure Monetate itself is not down, at most one extra POST per failing schema: when
no POST was answered since the failure, a POST with no rows (``{"schema_rows": []}``, valid for the
Data API) asks; failing the same way, Monetate is down — posting stops and everything is retried.
When both halves of a split fail the same way — rows of messages that share no payload — it asks
again: failing, Monetate is failing again and posting stops (an outage never costs a POST per
message); answered, each half holds a bad message and both are split further.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monetate_ingest.observability import logger
from monetate_ingest.records.failures import POST_REFUSED, Failure
from monetate_ingest.records.state import Msg, Refusal

if TYPE_CHECKING:
    from monetate_ingest.records.sending import Sender

Found = tuple[Failure, str]  # what a POST of a group met: Monetate failing or refusing, and why


@dataclass
class Held:
    """A merged payload Monetate failed (``UNAVAILABLE``) or refused (``REFUSED``), and its messages."""

    schema: str
    kind: Failure
    reason: str
    msgs: list[Msg]


def isolate(sender: Sender, held: list[Held]) -> None:
    """Find, in each held group, the messages whose own rows fail (see the module docstring)."""
    splitter = _Splitter(sender)
    for group in held:
        if sender.stopped is not None:
            return
        unknown = group.kind is Failure.UNAVAILABLE and not sender.answered_since_unavailable
        if unknown and sender.probe(group.schema) is not None:  # is Monetate up? ask once
            sender.stop(f"{group.reason} — and for a POST of no rows too: Monetate itself is failing")
            return
        logger.info(
            "splitting the messages of a failed POST",
            extra={"schema": group.schema, "messages": len(group.msgs), "reason": group.reason},
        )
        splitter.split(group.schema, group.msgs, (group.kind, group.reason))


@dataclass
class _Splitter:
    sender: Sender
    _found: list[Found] = field(default_factory=list)

    def split(self, schema: str, msgs: list[Msg], failure: Found) -> None:
        """``msgs``' rows, merged, met ``failure``: decide a single message, or try both halves."""
        pending = [m for m in msgs if not m.decided and self.sender.remaining_tags(m)]
        if not pending:
            return
        if len(pending) == 1:
            self._decide(pending[0], failure)
            return
        middle = (len(pending) + 1) // 2
        failed: list[tuple[list[Msg], Found]] = []
        for half in (pending[:middle], pending[middle:]):
            if self.sender.stopped is not None:
                return
            found = self._post(schema, half)
            if found is not None:
                failed.append((half, found))
        unavailable = [f for _, f in failed if f[0] is Failure.UNAVAILABLE]
        if len(unavailable) > 1 and self.sender.probe(schema) is not None:
            # two halves that share no message failed the same way, and so did a POST of no rows
            self.sender.stop(
                f"{unavailable[1][1]} — for the rows of other messages too: Monetate itself is failing"
            )
            return
        for half, found in failed:  # (both halves failing with Monetate up: a bad message in each)
            self.split(schema, half, found)

    def _post(self, schema: str, msgs: list[Msg]) -> Found | None:
        """POST these messages' rows not yet posted, merged (in order, within the batch limits);
        what stopped them, if Monetate failed or refused them (other failures are the sender's)."""
        sender = self.sender
        self._found = []
        tags = [t for m in msgs for t in sender.remaining_tags(m)]
        for batch in sender.batches(tags):
            delivery = sender.send(schema, batch)
            if delivery is None:
                return None
            sender.handle(schema, delivery, lambda kind, reason, _msgs: self._found.append((kind, reason)))
            if self._found or sender.stopped is not None:
                break
        return self._found[0] if self._found else None

    def _decide(self, m: Msg, failure: Found) -> None:
        kind, reason = failure
        if kind is Failure.UNAVAILABLE:
            m.retry(reason)
        else:
            self.sender.refuse(m, Refusal(POST_REFUSED, reason))
