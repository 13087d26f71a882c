"""The ledger's protocols: look up many record keys, record what Monetate accepted (the writers);
count or drop one schema's entries (the operator)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
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


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    """One schema's entries: how many, and the oldest and newest posting time (epoch seconds)."""

    records: int = 0
    oldest_post: float | None = None
    newest_post: float | None = None

    @classmethod
    def of(cls, posted_at: Iterable[float]) -> LedgerStatus:
        """The status of entries with these posting times (read once: a scan's stream will do)."""
        records, oldest, newest = 0, None, None
        for when in posted_at:
            records += 1
            oldest = when if oldest is None else min(oldest, when)
            newest = when if newest is None else max(newest, when)
        return cls(records, oldest, newest)


class LedgerAdmin(Protocol):
    """The operator's view of a ledger (``sync status`` / ``sync forget``); these may raise."""

    def status(self, scope: str) -> LedgerStatus:
        """The entries of one schema's scope (``LedgerHasher.scope``)."""
        ...

    def forget(self, scope: str) -> int:
        """Drop every entry of one schema's scope; the number dropped."""
        ...


def newest_per_key(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """One entry per key: the one of the newest source (the later one on a tie)."""
    kept: dict[str, LedgerEntry] = {}
    for entry in entries:
        old = kept.get(entry.key_id)
        if old is None or not entry.source.older_than(old.source):
            kept[entry.key_id] = entry
    return list(kept.values())
