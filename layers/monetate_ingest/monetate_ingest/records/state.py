"""What the PostRecords pre-pass knows of each message (:class:`Msg`), and helpers its stages share.

Every stage of :mod:`.message_batch` reads and updates the same :class:`Msg` records: the parse and
lookups mark a message permanent or transient, the claims mark it claimed or skipped, posting
fills ``queued`` / ``posted`` / ``refusals``, and :mod:`.message_settle` turns all that into an
outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from monetate_ingest.delivery.envelope import Envelope
from monetate_ingest.records.dead_letters import RowRefusal

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Msg:
    pos: int
    message_id: str
    body: str
    envelope: Envelope | None = None
    identity: dict[str, Any] | None = None
    twin: int | None = None  # an identical message earlier in this batch
    permanent: tuple[str, str] | None = None  # (error_type, error_message) for the whole message
    transient: str | None = None
    claimed: bool = False
    skipped: bool = False  # posted before (idempotency record COMPLETED)
    refusals: dict[int, RowRefusal] = field(default_factory=dict)
    queued: set[int] = field(default_factory=set)  # row indexes handed to the batcher
    posted: set[int] = field(default_factory=set)

    @property
    def schema(self) -> str | None:
        return self.envelope.schema if self.envelope else None


def parallel(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads (in order; plain loop for one item)."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"
