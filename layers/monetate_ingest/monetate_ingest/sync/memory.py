"""An in-memory ledger with the DynamoDB ledger's semantics (tests, local runs)."""

from __future__ import annotations

import threading
from collections.abc import Collection, Sequence

from monetate_ingest.sync.entries import LedgerEntry
from monetate_ingest.sync.ledger import LedgerStatus, Lookup, WriteOutcome, expiration, newest_per_key


class InMemoryLedger:
    """Holds entries in a dict; ``expirations`` mirrors the TTL attribute. Thread-safe."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.expirations: dict[str, int] = {}
        self.lookups: list[list[str]] = []
        self._lock = threading.Lock()

    def lookup(self, key_ids: Collection[str]) -> Lookup:
        unique = list(dict.fromkeys(key_ids))
        with self._lock:
            self.lookups.append(unique)
            return Lookup({k: self.entries[k] for k in unique if k in self.entries})

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        outcome = WriteOutcome()
        unique = newest_per_key(entries)
        outcome.kept_newer = len(entries) - len(unique)  # an older row of the same key in this call
        with self._lock:
            for entry in unique:
                old = self.entries.get(entry.key_id)
                if old is not None and entry.source.older_than(old.source):
                    outcome.kept_newer += 1
                    continue
                self.entries[entry.key_id] = entry
                self.expirations[entry.key_id] = expiration(entry, full_every_days)
                outcome.written += 1
        return outcome

    def status(self, scope: str) -> LedgerStatus:
        """How many entries one schema's scope holds, and its oldest and newest post."""
        with self._lock:
            posts = [e.posted_at for k, e in self.entries.items() if k.startswith(scope + ".")]
        return LedgerStatus.of(posts)

    def forget(self, scope: str) -> int:
        """Drop every entry of one schema's scope; the number dropped."""
        with self._lock:
            doomed = [k for k in self.entries if k.startswith(scope + ".")]
            for key in doomed:
                del self.entries[key]
                self.expirations.pop(key, None)
        return len(doomed)
