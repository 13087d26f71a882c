"""The values change-only sync works with: a row's source time, its ledger entry, a row to decide."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourceTime:
    """Where a row came from and how old it is.

    ``time`` is epoch seconds: a file's S3 ``LastModified`` (whole seconds) or a message's sent
    time; ``origin`` names the source (a file's ETag, or a message id); ``line`` orders the rows of
    one file (0 for a message).
    """

    time: float
    origin: str
    line: int = 0

    def older_than(self, other: SourceTime) -> bool:
        """Strictly older: an earlier time, or the same file and an earlier line.

        ``LastModified`` has whole seconds, so two files of the same second are not ordered; the
        line orders rows within one file only.
        """
        if self.time != other.time:
            return self.time < other.time
        return self.origin == other.origin and self.line < other.line


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the ledger holds per record key: the fingerprint last posted, when, and from where."""

    key_id: str
    fingerprint: bytes
    posted_at: float
    source: SourceTime


@dataclass(frozen=True, slots=True)
class SyncRow:
    """One valid row as change-only sync sees it (no customer value, only hashes)."""

    key_id: str
    fingerprint: bytes
    source: SourceTime

    def entry(self, posted_at: float) -> LedgerEntry:
        """The ledger entry to write once Monetate accepted this row."""
        return LedgerEntry(self.key_id, self.fingerprint, posted_at, self.source)
