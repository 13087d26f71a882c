"""Rows read → *units*: the rows between two batch boundaries, with the rows rejected among them.

A unit is what the scheduler posts and the job finishes in order and checkpoints; its
:class:`UnitOutcome` says which of its rows were posted, refused or parked. The :class:`UnitReader`
takes what a reader yields — :class:`SourceRow` objects, ``(line, cells)`` tuples and, for CSV,
:class:`CellBlock` runs of good rows — coerces and batches it, and hands each unit to ``submit``
as soon as its batch is full.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.delivery.bisection import BisectResult
from monetate_ingest.formats.coercion import RowCoercer
from monetate_ingest.formats.exceptions import FileFormatError, RowError
from monetate_ingest.formats.readers import SourceRow
from monetate_ingest.formats.readers.csv_rows import CellBlock
from monetate_ingest.ingest.change_sync import SyncPlan
from monetate_ingest.ingest.rejects import reject_line

#: A unit closes after this many rejects even without a batch, so checkpoints keep moving.
MAX_REJECTS_PER_UNIT = 1_000
#: A block that cannot be encoded whole is halved until its pieces are this small, then taken
#: row by row: one bad row costs a few encodings of its neighbours, not a slow block.
MIN_PIECE_ROWS = 8
_REJECTED = object()

Item = SourceRow | tuple[int, list[str]] | CellBlock


@dataclass(slots=True)
class UnitOutcome:
    """What became of a unit's batch: lines posted, ``(line, reason)`` refused, rows parked, POSTs."""

    posted: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    parked: int = 0
    posts: int = 0
    #: Rows change-only sync skipped (unchanged or superseded), and rows per sync decision.
    unchanged: int = 0
    sync: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint's JSON form."""
        return {
            "posted": self.posted,
            "refused": [list(r) for r in self.refused],
            "parked": self.parked,
            "posts": self.posts,
            "unchanged": self.unchanged,
            "sync": self.sync,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UnitOutcome:
        return cls(
            posted=[int(n) for n in data.get("posted", [])],
            refused=[(int(line), str(reason)) for line, reason in data.get("refused", [])],
            parked=int(data.get("parked", 0)),
            posts=int(data.get("posts", 0)),
            unchanged=int(data.get("unchanged", 0)),
            sync={str(k): int(v) for k, v in data.get("sync", {}).items()},
        )


@dataclass
class Unit:
    seq: int
    rows: int = 0
    rejects: list[bytes] = field(default_factory=list)
    reject_fields: list[str] = field(default_factory=list)
    batch: Batch | None = None
    future: Future[BisectResult] | None = None
    outcome: UnitOutcome | None = None
    #: Change-only sync's decision for the batch (set by the worker before it posts).
    plan: SyncPlan | None = None


class UnitReader:
    """Feeds rows to a :class:`Batcher` and cuts them into units (see the module docstring).

    ``submit(unit)`` receives each closed unit; ``pause()`` runs after every item (the caller
    waits there when too many units are in flight); ``out_of_time()`` is asked after each batch
    boundary, and when it says so reading stops: the rows after the boundary belong to the next
    invocation (:attr:`stopped_early`).
    """

    def __init__(
        self,
        batcher: Batcher,
        coercer: RowCoercer,
        columns: list[str],
        first_seq: int,
        *,
        submit: Callable[[Unit], None],
        pause: Callable[[], None],
        out_of_time: Callable[[], bool],
    ) -> None:
        self.batcher = batcher
        self.coercer = coercer
        self.columns = columns
        self.unit = Unit(first_seq)
        self.submit = submit
        self.pause = pause
        self.out_of_time = out_of_time
        self.stopped_early = False

    def read(self, items: Iterable[Item]) -> int:
        """Take every item (or stop at the deadline); returns the number of the next unit to read."""
        block = self._block
        row = self._row
        pause = self.pause
        try:
            for item in items:
                if not (block(item.lines, item.rows) if isinstance(item, CellBlock) else row(item)):
                    self.stopped_early = True
                    return self.unit.seq
                pause()
        except FileFormatError:
            self._close(self.batcher.flush())  # the rows read before the damage still count
            raise
        self._close(self.batcher.flush())
        return self.unit.seq

    def _close(self, batch: Batch | None) -> bool:
        """Close the current unit with ``batch`` and start the next; False when out of time."""
        unit = self.unit
        unit.batch = batch
        self.submit(unit)
        self.unit = Unit(unit.seq + 1)
        return not self.out_of_time()

    def _block(self, lines: Sequence[int], rows: list[list[str]]) -> bool:
        """Good CSV rows: encoded column by column, or halved around the row that stops that."""
        encode_block = self.coercer.encode_block
        encoded = None if encode_block is None else encode_block(rows)
        if encoded is not None:
            return self._run(lines, encoded)
        if len(rows) <= MIN_PIECE_ROWS:
            return all(self._row(pair) for pair in zip(lines, rows))  # noqa: B905 - same length
        mid = len(rows) // 2
        return self._block(lines[:mid], rows[:mid]) and self._block(lines[mid:], rows[mid:])

    def _run(self, lines: Sequence[int], encoded: list[bytes]) -> bool:
        add_run = self.batcher.add_run
        start = 0
        while start < len(encoded):
            taken, full = add_run(lines, encoded, start)
            if full is not None and not self._close(full):
                return False
            self.unit.rows += taken
            start += taken
        return True

    def _row(self, row: SourceRow | tuple[int, list[str]]) -> bool:
        """One row: batched, or rejected with its reason."""
        full = self._add(row)
        if full is _REJECTED:
            if len(self.unit.rejects) >= MAX_REJECTS_PER_UNIT:
                self._close(self.batcher.flush())
            return True
        if full is not None and not self._close(full):  # type: ignore[arg-type]
            return False  # this row belongs to the next invocation
        self.unit.rows += 1
        return True

    def _add(self, row: SourceRow | tuple[int, list[str]]) -> Batch | object | None:
        """The row into the batcher (a full batch may come back), or ``_REJECTED``."""
        coercer = self.coercer
        batcher = self.batcher
        if not isinstance(row, SourceRow):  # a good CSV row: (line, cells)
            line, cells = row
            try:
                if coercer.encode_cells is not None:  # straight to the row's JSON, no dict
                    return batcher.add_encoded(line, coercer.encode_cells(cells))
                return batcher.add(line, coercer.coerce_cells(cells))  # type: ignore[misc]
            except RowError as exc:
                return self._reject(line, exc.reason, dict(zip(self.columns, cells, strict=True)), exc.field)
        if row.values is None:
            return self._reject(row.line, row.error or "row could not be read", row.raw, None)
        try:
            return batcher.add(row.line, coercer.coerce(row.values))
        except RowError as exc:
            return self._reject(row.line, exc.reason, row.raw, exc.field)

    def _reject(self, line: int, reason: str, raw: Any, field_name: str | None) -> object:
        """Count the row in the current unit as rejected; returns the ``_REJECTED`` marker."""
        unit = self.unit
        unit.rows += 1
        unit.rejects.append(reject_line(line, reason, raw, field_name))
        unit.reject_fields.append(field_name or "row")
        return _REJECTED
