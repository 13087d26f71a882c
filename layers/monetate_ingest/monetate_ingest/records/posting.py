"""Posting PostRecords' claimed rows: merged per schema into POSTs, results mapped back to messages.

Each row handed to the :class:`Batcher` gets a global tag (``owners``: tag → message, row index),
so what :func:`post_with_bisection` reports — rows posted, rows Monetate refused with 400 — lands on
the message it came from. A transient failure, or the invocation's deadline drawing near, stops
posting: the messages whose rows were not delivered are marked for retry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import RowRefusal
from monetate_ingest.records.state import CoercedRow, Msg, describe_error

if TYPE_CHECKING:
    from monetate_ingest.delivery.batching import Batch
    from monetate_ingest.records.types import PostRecordsDeps


class RowPoster:
    """Posts one invocation's claimed rows; counts its POSTs (``posts``)."""

    def __init__(self, deps: PostRecordsDeps, remaining_ms: Callable[[], int | None]) -> None:
        self.deps = deps
        self.remaining_ms = remaining_ms
        self.posts = 0
        self.owners: list[tuple[int, int]] = []  # tag → (message pos, row index)

    def post(self, msgs: list[Msg], coerced: dict[str, list[CoercedRow]]) -> None:
        from monetate_ingest.delivery.batching import Batcher

        by_pos = {m.pos: m for m in msgs}
        for schema, rows in coerced.items():
            batcher = Batcher(self.deps.rows.batch_max_rows, self.deps.rows.batch_max_bytes)
            batches: list[Batch] = []
            for pos, index, row in ((c.pos, c.index, c.row) for c in rows):
                m = by_pos[pos]
                if not m.claimed or m.transient:
                    continue
                tag = len(self.owners)
                try:
                    full = batcher.add(tag, row)
                except RowError as exc:
                    m.refusals[index] = RowRefusal(index, exc.reason, exc.field)
                    continue
                self.owners.append((pos, index))
                m.queued.add(index)
                if full is not None:
                    batches.append(full)
            last = batcher.flush()
            if last is not None:
                batches.append(last)
            if not self._post_batches(schema, batches, by_pos):
                return

    def _post_batches(self, schema: str, batches: list[Batch], by_pos: dict[int, Msg]) -> bool:
        """Post in order; False once posting must stop (transient failure or the deadline)."""
        from monetate_ingest.delivery.bisection import PartialDeliveryError, post_with_bisection

        for n, batch in enumerate(batches):
            remaining = self.remaining_ms()
            if remaining is not None and remaining < self.deps.deadline_margin_ms:
                self._fail_tags(
                    [t for b in batches[n:] for t in b.lines], by_pos, "the invocation's deadline is near"
                )
                return False
            try:
                result = post_with_bisection(self.deps.client, schema, batch)
            except KeyRevokedError:
                raise
            except PartialDeliveryError as exc:
                self.posts += exc.result.posts
                self._apply(exc.result.posted, exc.result.refused, by_pos)
                pending = [t for b in exc.pending for t in b.lines] + [
                    t for b in batches[n + 1 :] for t in b.lines
                ]
                self._fail_tags(pending, by_pos, f"Monetate unavailable: {describe_error(exc.cause)}")
                return False
            except Exception as exc:  # TransientApiError before any POST, or unexpected: retry
                self._fail_tags([t for b in batches[n:] for t in b.lines], by_pos, describe_error(exc))
                return False
            self.posts += result.posts
            self._apply(result.posted, result.refused, by_pos)
        return True

    def _apply(self, posted: list[int], refused: list[tuple[int, str]], by_pos: dict[int, Msg]) -> None:
        for tag in posted:
            pos, index = self.owners[tag]
            by_pos[pos].posted.add(index)
        for tag, reason in refused:
            pos, index = self.owners[tag]
            by_pos[pos].refusals[index] = RowRefusal(index, reason)

    def _fail_tags(self, tags: list[int], by_pos: dict[int, Msg], reason: str) -> None:
        for tag in tags:
            m = by_pos[self.owners[tag][0]]
            m.transient = m.transient or reason
        logger.warning("posting stopped; the affected messages will be retried", extra={"reason": reason})
