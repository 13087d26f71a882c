"""The decision per row, pure: new, changed, unchanged or superseded; and the counts of a file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from monetate_ingest.sync.entries import LedgerEntry, SyncRow

DAY = 86_400.0
SyncMode = Literal["changes", "all"]


class Decision(StrEnum):
    NEW = "new"  # no entry (or the lookup failed: fail open)
    CHANGED = "changed"  # another fingerprint, or the last post is SYNC_FULL_EVERY_DAYS old
    UNCHANGED = "unchanged"  # the same fingerprint, posted less than SYNC_FULL_EVERY_DAYS ago
    SUPERSEDED = "superseded"  # the row's source is strictly older than the entry's

    @property
    def posts(self) -> bool:
        """Whether the row is posted."""
        return self in (Decision.NEW, Decision.CHANGED)


def decide(row: SyncRow, entry: LedgerEntry | None, *, now: float, full_every_days: int) -> Decision:
    """What to do with ``row`` given its ledger ``entry``.

    Superseded first: Monetate holds newer data, whatever the fingerprints. An unchanged row does
    not refresh the entry's posting time, so every record is posted at least every
    ``full_every_days`` (heals drift in Monetate).
    """
    if entry is None:
        return Decision.NEW
    if row.source.older_than(entry.source):
        return Decision.SUPERSEDED
    if row.fingerprint != entry.fingerprint:
        return Decision.CHANGED
    if now - entry.posted_at >= full_every_days * DAY:
        return Decision.CHANGED
    return Decision.UNCHANGED


def decide_all(
    rows: Sequence[SyncRow], entries: Mapping[str, LedgerEntry], *, now: float, full_every_days: int
) -> list[Decision]:
    """:func:`decide` for each row against ``entries`` (by key id; a missing one is new).

    Rows are decided independently: a key must appear once per call (the ingest's per-key order
    settles earlier rows of the same key before a later one is looked up).
    """
    return [decide(r, entries.get(r.key_id), now=now, full_every_days=full_every_days) for r in rows]


@dataclass(slots=True)
class SyncCounts:
    """The report's ``sync`` object. ``unchanged`` includes ``superseded`` (skipped: Monetate
    already holds newer data) and is the report's ``counts.unchanged``."""

    mode: SyncMode = "all"
    new: int = 0
    changed: int = 0
    unchanged: int = 0
    superseded: int = 0

    def add(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            if decision is Decision.NEW:
                self.new += 1
            elif decision is Decision.CHANGED:
                self.changed += 1
            else:
                self.unchanged += 1
                if decision is Decision.SUPERSEDED:
                    self.superseded += 1

    def to_dict(self) -> dict[str, str | int]:
        return {
            "mode": self.mode,
            "new": self.new,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "superseded": self.superseded,
        }
