"""Per-key order: a batch that shares a record key with an earlier batch still in flight waits.

Batches post concurrently; a retried or slow batch must not land after a later batch holding a
newer row for the same record. :class:`KeyOrder` holds the keys of the batches in flight only
(bounded by concurrency x batch size) and answers which of them a new batch must wait for. It
also remembers the keys of batches that were parked, so the file's later rows for those records
are parked behind them instead of being posted ahead of them.
"""

from __future__ import annotations

from collections.abc import Iterable


class KeyOrder:
    """Keys of the batches in flight (by unit number) and of the batches parked."""

    def __init__(self) -> None:
        self._holders: dict[bytes, set[int]] = {}
        self._keys: dict[int, list[bytes]] = {}
        self.parked: set[bytes] = set()

    def __len__(self) -> int:
        """Keys currently held by batches in flight."""
        return len(self._holders)

    def blockers(self, keys: Iterable[bytes | None]) -> set[int]:
        """Units in flight that hold any of ``keys`` (the new batch waits for all of them)."""
        found: set[int] = set()
        holders = self._holders
        for key in keys:
            if key is not None:
                held = holders.get(key)
                if held:
                    found |= held
        return found

    def hold(self, seq: int, keys: Iterable[bytes | None]) -> None:
        """Unit ``seq`` is now in flight with ``keys``."""
        mine = [k for k in keys if k is not None]
        self._keys[seq] = mine
        holders = self._holders
        for key in mine:
            holders.setdefault(key, set()).add(seq)

    def release(self, seq: int, *, parked: bool = False) -> None:
        """Unit ``seq`` ended (posted, refused or parked); a parked unit's keys stay parked."""
        holders = self._holders
        for key in self._keys.pop(seq, ()):
            held = holders.get(key)
            if held is not None:
                held.discard(seq)
                if not held:
                    del holders[key]
            if parked:
                self.parked.add(key)

    def must_park(self, keys: Iterable[bytes | None]) -> list[int]:
        """Positions of ``keys`` whose record has a parked row earlier in the file."""
        parked = self.parked
        if not parked:
            return []
        return [i for i, key in enumerate(keys) if key is not None and key in parked]
