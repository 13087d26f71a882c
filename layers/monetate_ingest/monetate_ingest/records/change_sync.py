"""PostRecords' change-only sync: skip the rows Monetate already holds, record the rows it accepted.

Per batch and schema one :class:`SyncSession` (``deps.sync.session``). Before posting, the claimed
rows are classified against the ledger by their unique key and **source time**: a parked envelope
keeps its file's age (``source.time``, the file's S3 ``LastModified``, with ``source.etag`` and the
row's ``source.lines`` entry), any other message — and a parked envelope written before IngestFile
added ``time`` — uses its SQS ``SentTimestamp`` and message id (the current time when absent).
The envelope's own ``source`` is what counts, not the ``origin`` message attribute: dead letters
and the copying redrive do not keep message attributes, and a redriven row must keep its age.

A key met several times in one schema's batch is decided once, on its newest row (ties: the later
one). Rows of a key that posts are posted in their order up to that row; rows after it are older
(they would overwrite newer data) and are skipped as superseded. Every skipped row is noted in its
message's ``unchanged`` (so a message whose rows are all unchanged ends as posted). After posting,
the decided rows Monetate accepted (201) are written to the ledger; a refused row never is.

Fail open everywhere: a session that cannot be made, a failed or broken lookup post the rows; a
failed write is logged and counted and never fails a message (those rows are posted next time).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeGuard

from monetate_ingest.observability import logger
from monetate_ingest.records.state import CoercedRow, Msg
from monetate_ingest.sync.decide import Decision
from monetate_ingest.sync.entries import SourceTime, SyncRow

if TYPE_CHECKING:
    from monetate_ingest.monetate.schema import SchemaSpec
    from monetate_ingest.records.deadline import Budget
    from monetate_ingest.records.types import PostRecordsDeps
    from monetate_ingest.sync.session import SyncSession

#: Ledger entries written per round after posting; the budget is checked between rounds.
WRITE_CHUNK = 200
#: A file time is believed only if it is not later than the message was sent (plus this skew): a
#: producer's own ``source.time`` in other units (milliseconds, say) would otherwise date its rows
#: in the far future and make every later file's rows look superseded.
CLOCK_SKEW_SECONDS = 300.0


def source_time(m: Msg, index: int, now: Callable[[], float]) -> SourceTime:
    """Row ``index`` of ``m``: its file's source when a parked envelope says it, else the message's."""
    parked = _file_source(m)
    sent = m.sent_time if m.sent_time is not None else now()
    if parked is not None and parked[0] <= sent + CLOCK_SKEW_SECONDS:
        time, etag, lines = parked
        return SourceTime(time, etag, lines[index])
    return SourceTime(sent, m.message_id, 0)


def _file_source(m: Msg) -> tuple[float, str, list[int]] | None:
    """``(time, etag, lines)`` of a parked envelope whose ``source`` carries all three."""
    source = m.envelope.source if m.envelope is not None else None
    if not source:
        return None
    time, etag, lines = source.get("time"), source.get("etag"), source.get("lines")
    if not _number(time) or not isinstance(etag, str) or not etag:
        return None
    if not isinstance(lines, list) or len(lines) != m.rows_total or not all(_int(x) for x in lines):
        return None
    return float(time), etag, lines


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class _Key:
    """The rows of one record key in one schema's batch, and the one it is decided on."""

    sync_row: SyncRow
    decided: CoercedRow
    rows: list[CoercedRow] = field(default_factory=list)


@dataclass
class _Plan:
    """One schema's session and the decided rows to record once Monetate accepted them."""

    session: SyncSession
    to_record: list[tuple[CoercedRow, SyncRow]] = field(default_factory=list)


class ChangeSync:
    """One invocation's change-only sync (see the module docstring)."""

    def __init__(self, deps: PostRecordsDeps, specs: dict[str, SchemaSpec], budget: Budget) -> None:
        self.deps = deps
        self.specs = specs
        self.budget = budget
        self.plans: dict[str, _Plan] = {}
        #: How long the lookups took: the ledger writes are expected to take about as long, and
        #: that much of the invocation's end reserve is theirs (``Budget.expect_settling``).
        self.lookup_seconds = 0.0

    def classify(self, msgs: list[Msg], coerced: dict[str, list[CoercedRow]]) -> dict[str, list[CoercedRow]]:
        """The rows to post, per schema; the skipped ones noted in their message's ``unchanged``."""
        by_pos = {m.pos: m for m in msgs}
        return {schema: self._classify(schema, rows, by_pos) for schema, rows in coerced.items()}

    def _classify(self, schema: str, rows: list[CoercedRow], by_pos: dict[int, Msg]) -> list[CoercedRow]:
        session = self._session(schema)
        if session is None or not session.active:
            return rows
        keys = self._keys(session, [c for c in rows if _live(by_pos[c.pos])], by_pos)
        started = self.budget.clock()
        try:
            decisions = session.classify([k.sync_row for k in keys.values()])
        except Exception as exc:  # the ledger must never fail a message: post (fail open)
            logger.warning(
                "change-only sync: the ledger lookup failed unexpectedly; every row is posted",
                extra={"schema": schema, "error_type": type(exc).__name__},
            )
            return rows
        finally:
            self.lookup_seconds += self.budget.clock() - started
        plan = self.plans[schema] = _Plan(session)
        skipped: set[tuple[int, int]] = set()
        for key, decision in zip(keys.values(), decisions, strict=True):
            skipped |= self._apply(plan, key, decision, by_pos)
        logger.info("change-only sync", extra={"schema": schema, **session.counts.to_dict()})
        return [c for c in rows if (c.pos, c.index) not in skipped]

    def _session(self, schema: str) -> SyncSession | None:
        try:
            return self.deps.sync.session(self.specs[schema])
        except Exception as exc:  # e.g. the key the ledger's hashes need could not be read
            logger.warning(
                "change-only sync unavailable for this batch; every row is posted",
                extra={"schema": schema, "error_type": type(exc).__name__},
            )
            return None

    def _keys(self, session: SyncSession, rows: list[CoercedRow], by_pos: dict[int, Msg]) -> dict[str, _Key]:
        """Rows grouped by key id (first appearance order), each key decided on its newest row."""
        keys: dict[str, _Key] = {}
        for c in rows:
            try:
                sync_row = session.row(c.row, source_time(by_pos[c.pos], c.index, session.clock))
            except Exception as exc:  # hashing a coerced row should not fail: post it, record nothing
                logger.warning(
                    "change-only sync could not hash a row; it is posted",
                    extra={"message_id": by_pos[c.pos].message_id, "error_type": type(exc).__name__},
                )
                continue
            key = keys.setdefault(sync_row.key_id, _Key(sync_row, c))
            key.rows.append(c)
            if not sync_row.source.older_than(key.sync_row.source):
                key.sync_row, key.decided = sync_row, c
        return keys

    @staticmethod
    def _apply(plan: _Plan, key: _Key, decision: Decision, by_pos: dict[int, Msg]) -> set[tuple[int, int]]:
        """Skip the key's rows that do not post; the others' decisions counted. Returns the skipped."""
        skipped: set[tuple[int, int]] = set()
        others: list[Decision] = []
        after_decided = False
        for c in key.rows:
            this = Decision.SUPERSEDED if after_decided else decision  # later rows are older
            if c is key.decided:
                after_decided = True
            else:
                others.append(this)
            if not this.posts:
                by_pos[c.pos].unchanged.add(c.index)
                skipped.add((c.pos, c.index))
        plan.session.counts.add(others)  # the session counted the decided row
        if decision.posts:
            plan.to_record.append((key.decided, key.sync_row))
        return skipped

    def record(self, msgs: list[Msg]) -> None:
        """Write the decided rows Monetate accepted (201), while the time set aside for it lasts;
        never fails a message (a row not written is posted again next time)."""
        by_pos = {m.pos: m for m in msgs}
        for schema, plan in self.plans.items():
            accepted = [s for c, s in plan.to_record if c.index in by_pos[c.pos].posted]
            for start in range(0, len(accepted), WRITE_CHUNK):
                if self._out_of_time():
                    logger.warning(
                        "change-only sync: no time left to record rows in the ledger; they will be "
                        "posted again next time",
                        extra={"schema": schema, "rows": len(accepted) - start},
                    )
                    break
                self._write(schema, plan.session, accepted[start : start + WRITE_CHUNK])

    def _out_of_time(self) -> bool:
        left = self.budget.left()
        return left is not None and left < self.budget.end_reserve() - self.lookup_seconds

    @staticmethod
    def _write(schema: str, session: SyncSession, rows: list[SyncRow]) -> None:
        try:
            outcome = session.posted(rows)
        except Exception as exc:
            logger.warning(
                "change-only sync: the ledger write failed unexpectedly; those rows will be posted again",
                extra={"schema": schema, "rows": len(rows), "error_type": type(exc).__name__},
            )
            return
        if outcome.failed:
            logger.warning(
                "change-only sync: ledger writes failed; those rows will be posted again next time",
                extra={"schema": schema, "rows": outcome.failed},
            )


def _live(m: Msg) -> bool:
    return m.claimed and not m.decided
