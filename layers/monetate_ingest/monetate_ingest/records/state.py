"""What PostRecords knows of each SQS message while it handles a batch, and the helpers it shares.

:class:`Msg` is one message's running state: its parsed envelope, its idempotency claim, which of
its rows were queued, posted, refused or skipped as unchanged, and — once decided — why it is
dead-lettered whole (:class:`Refusal`) or must be retried (``transient``). :class:`CoercedRow` is
one of its rows ready for the batcher. ``parallel`` runs I/O on a few threads; ``describe_error``
is the one-line form of an exception used in logs and reasons (never a secret: exceptions of this
package carry none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from monetate_ingest.delivery.envelope import Envelope
from monetate_ingest.records.dead_letters import RowRefusal

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Refusal:
    """Why a whole message is dead-lettered: the DLQ's ``error_type`` code and ``error_message``."""

    error_type: str
    error_message: str


@dataclass(frozen=True, slots=True)
class CoercedRow:
    """A row that passed coercion: its message (``pos`` in the batch), its index there, the row."""

    pos: int
    index: int
    row: dict[str, Any]


@dataclass
class Msg:
    """One SQS message of the batch and everything decided about it so far."""

    pos: int
    message_id: str
    body: str
    receive_count: int = 1
    sent_time: float | None = None  # SQS SentTimestamp, epoch seconds (change-only sync's source time)
    envelope: Envelope | None = None
    identity: dict[str, Any] | None = None
    twin: int | None = None  # an identical message earlier in this batch
    permanent: Refusal | None = None  # dead-letter the original body with this reason
    transient: str | None = None  # retry the message (SQS redelivers it); the reason, for the logs
    claimed: bool = False
    skipped: bool = False  # posted before (idempotency record COMPLETED)
    refusals: dict[int, RowRefusal] = field(default_factory=dict)
    queued: set[int] = field(default_factory=set)  # row indexes handed to the batcher
    posted: set[int] = field(default_factory=set)
    unchanged: set[int] = field(default_factory=set)  # skipped by change-only sync: Monetate holds them

    @property
    def schema(self) -> str | None:
        return self.envelope.schema if self.envelope else None

    @property
    def rows_total(self) -> int:
        return len(self.envelope.rows) if self.envelope else 0

    @property
    def stored(self) -> int:
        """Rows Monetate holds: posted now, or unchanged since they were."""
        return len(self.posted) + len(self.unchanged)

    @property
    def decided(self) -> bool:
        """Dead-lettered whole, to be retried, or already posted before: nothing more to post."""
        return self.permanent is not None or self.transient is not None or self.skipped

    def retry(self, reason: str) -> None:
        """Mark the message for retry (the first reason wins: it is the cause, later ones follow)."""
        if self.transient is None:
            self.transient = reason


def parallel(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads (in order; plain loop for one item)."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def describe_error(exc: BaseException) -> str:
    """``TypeName: message`` (the message cut at 300 characters)."""
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
