"""Per-key order: a batch that shares a record key with an earlier batch still in flight waits.

Batches post concurrently; a retried or slow batch must not land after a later batch holding a
newer row for the same record. :class:`KeyOrder` holds the keys of the batches in flight only
(bounded by concurrency x batch size) and answers which of them a new batch must wait for. It
also remembers the keys of batches that were parked, so the file's later rows for those records
are parked behind them instead of being posted ahead of them.
"""

from __future__ import annotations


class KeyOrder:
    """Keys of the batches in flight (by unit number) and of the batches parked.

    A key is held by at most one unit at a time (a unit sharing a key waits until its holder has
    ended), so the keys in flight are one dict, updated and queried with set operations in C.
    """

    def __init__(self) -> None:
        self._holder: dict[bytes, int] = {}
        self._keys: dict[int, set[bytes]] = {}
        self.parked: set[bytes] = set()

    def __len__(self) -> int:
        """Keys currently held by batches in flight."""
        return len(self._holder)

    def blockers(self, keys: set[bytes]) -> set[int]:
        """Units in flight that hold any of ``keys`` (the new batch waits for all of them)."""
        shared = keys & self._holder.keys()
        if not shared:
            return set()
        holder = self._holder
        return {holder[k] for k in shared}

    def hold(self, seq: int, keys: set[bytes]) -> None:
        """Unit ``seq`` is now in flight with ``keys`` (none of them held by another unit)."""
        self._keys[seq] = keys
        self._holder.update(dict.fromkeys(keys, seq))

    def release(self, seq: int, *, parked: bool = False) -> None:
        """Unit ``seq`` ended (posted, refused or parked); a parked unit's keys stay parked."""
        keys = self._keys.pop(seq, None)
        if not keys:
            return
        holder = self._holder
        if len(keys) * 2 > len(holder):
            self._holder = {k: v for k, v in holder.items() if v != seq}
        else:
            for key in keys:
                if holder.get(key) == seq:
                    del holder[key]
        if parked:
            self.parked |= keys

    def must_park(self, keys: list[bytes | None]) -> list[int]:
        """Positions of ``keys`` whose record has a parked row earlier in the file."""
        parked = self.parked
        if not parked:
            return []
        return [i for i, key in enumerate(keys) if key is not None and key in parked]
