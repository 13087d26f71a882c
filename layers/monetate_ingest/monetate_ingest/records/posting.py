"""Posting PostRecords' claimed rows: merged per schema into as few POSTs as the limits allow.

:class:`RowPoster` encodes each claimed row once, merges the rows of every schema into POSTs (in
order: a message's rows keep theirs) and posts them through a :class:`Sender`. Each schema's rows
are tried once, whatever another schema's POSTs answered, unless Monetate itself is failing. A POST
that Monetate fails (5xx, timeouts …) or refuses (413, 405 …) after the client's retries holds its
messages: once every other payload was tried they are split by message
(:func:`monetate_ingest.records.isolation.isolate`), so only the messages whose own rows cannot be
delivered are retried or dead-lettered. A second payload failing the same way means Monetate is
down: posting stops and everything not posted is retried.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monetate_ingest.delivery.batching import Batch, Batcher, encode
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import RowRefusal
from monetate_ingest.records.failures import POST_REFUSED, Failure
from monetate_ingest.records.isolation import Held, isolate
from monetate_ingest.records.sending import Sender
from monetate_ingest.records.state import CoercedRow, Msg, Refusal, describe_error

if TYPE_CHECKING:
    from monetate_ingest.records.deadline import Budget
    from monetate_ingest.records.types import PostRecordsDeps


@dataclass
class RowPoster:
    """Posts one invocation's claimed rows; ``posts`` counts its POSTs once :meth:`post` returns."""

    deps: PostRecordsDeps
    budget: Budget
    posts: int = 0
    held: list[Held] = field(default_factory=list)
    failed_payloads: int = 0  # merged payloads Monetate failed (5xx, timeouts) in this invocation

    def post(self, msgs: list[Msg], coerced: dict[str, list[CoercedRow]]) -> None:
        sender = Sender(self.deps, self.budget, msgs)
        try:
            plans = {schema: self._encode(sender, rows) for schema, rows in coerced.items()}
            for schema, tags in plans.items():
                self._post_schema(sender, schema, tags)
            isolate(sender, self.held)
            sender.finish()
        finally:
            self.posts = sender.posts

    def _encode(self, sender: Sender, rows: list[CoercedRow]) -> list[int]:
        """Each claimed row's JSON, once (a row that cannot be encoded is refused)."""
        tags: list[int] = []
        for c in rows:
            m = sender.by_pos[c.pos]
            if not m.claimed or m.decided:
                continue
            try:
                data = encode(c.row)
            except RowError as exc:
                m.refusals[c.index] = RowRefusal(c.index, exc.reason, exc.field)
                continue
            except Exception as exc:  # a bug must not sink the batch: this message is retried
                logger.exception(
                    "encoding a row failed unexpectedly; the message will be retried",
                    extra={"message_id": m.message_id, "error_type": type(exc).__name__},
                )
                m.retry(f"internal error while encoding rows[{c.index}] ({describe_error(exc)})")
                continue
            tags.append(sender.add_row(m, c.index, data))
        return tags

    def _post_schema(self, sender: Sender, schema: str, tags: list[int]) -> None:
        batcher = Batcher(self.deps.rows.batch_max_rows, self.deps.rows.batch_max_bytes)
        for tag in tags:
            if sender.stopped is not None:
                return
            if self._waiting(sender, sender.owner(tag), schema):
                continue
            full = batcher.add_encoded(tag, sender.rows[tag].data)
            if full is not None:
                self._post(sender, schema, full)
        last = batcher.flush()
        if last is not None and sender.stopped is None:
            self._post(sender, schema, last)

    def _waiting(self, sender: Sender, m: Msg, schema: str) -> bool:
        """Whether ``m``'s rows must not go into a merged POST now (decided, or held for isolation)."""
        return m.decided or schema in sender.gone or any(m in h.msgs for h in self.held)

    def _post(self, sender: Sender, schema: str, batch: Batch) -> None:
        kept = [t for t in batch.lines if not self._waiting(sender, sender.owner(t), schema)]
        if not kept:
            return
        delivery = sender.send(schema, batch if len(kept) == len(batch) else sender.batch_of(kept))
        if delivery is not None:
            sender.handle(
                schema, delivery, lambda kind, reason, msgs: self._hold(sender, schema, kind, reason, msgs)
            )

    def _hold(self, sender: Sender, schema: str, kind: Failure, reason: str, msgs: list[Msg]) -> None:
        """A payload Monetate failed or refused: its messages wait to be split (a payload of one
        message is decided at once). A second payload failing the same way — other messages' rows —
        means Monetate itself is failing: posting stops."""
        if kind is Failure.UNAVAILABLE:
            self.failed_payloads += 1
            if self.failed_payloads > 1:
                sender.stop(f"{reason} — for the rows of other messages too: Monetate itself is failing")
                return
        if len(msgs) == 1:
            if kind is Failure.UNAVAILABLE:
                msgs[0].retry(reason)
            else:
                sender.refuse(msgs[0], Refusal(POST_REFUSED, reason))
            return
        self.held.append(Held(schema, kind, reason, msgs))
