"""The ledger's protocol: look up many record keys, record what Monetate accepted."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from monetate_ingest.sync.decide import DAY
from monetate_ingest.sync.entries import LedgerEntry

#: Entries outlive ``SYNC_FULL_EVERY_DAYS`` by this much: DynamoDB's TTL deletes lazily (within
#: ~48 h), an entry older than N days is re-posted anyway, and the margin keeps the superseded
#: check alive for a replay that comes a little later than that.
EXPIRATION_MARGIN_DAYS = 2


def expiration(entry: LedgerEntry, full_every_days: int) -> int:
    """The TTL ``expiration`` (epoch seconds) of an entry."""
    return int(entry.posted_at + (full_every_days + EXPIRATION_MARGIN_DAYS) * DAY)


@dataclass(slots=True)
class Lookup:
    """Entries found by key id; ``failed`` keys could not be read (treated as new: fail open)."""

    entries: dict[str, LedgerEntry] = field(default_factory=dict)
    failed: int = 0


@dataclass(slots=True)
class WriteOutcome:
    """``written``; ``kept_newer``: the ledger holds a newer source (the condition refused the
    write, nothing is wrong); ``failed``: not written (those rows are posted again next time)."""

    written: int = 0
    kept_newer: int = 0
    failed: int = 0

    def __iadd__(self, other: WriteOutcome) -> WriteOutcome:
        self.written += other.written
        self.kept_newer += other.kept_newer
        self.failed += other.failed
        return self


class Ledger(Protocol):
    """What change-only sync needs from its store. Neither method raises for a store failure."""

    def lookup(self, key_ids: Collection[str]) -> Lookup:
        """The entries of these keys (duplicates allowed; each is read once)."""
        ...

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        """Write entries of rows Monetate accepted; an entry never replaces one of a newer source."""
        ...


def newest_per_key(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """One entry per key: the one of the newest source (the later one on a tie)."""
    kept: dict[str, LedgerEntry] = {}
    for entry in entries:
        old = kept.get(entry.key_id)
        if old is None or not entry.source.older_than(old.source):
            kept[entry.key_id] = entry
    return list(kept.values())
