"""Posting batches to Monetate: bisection of refused batches and partial-delivery bookkeeping.

Monetate refuses a whole POST with 400 when one row is invalid, and its body does not reliably name
the row. So a refused batch is split in halves and each half posted again, down to single rows,
whose 400 message becomes their reject reason. A batch of n rows with k bad rows costs at most
about 2·k·log2(n) extra POSTs; rows are validated against the schema before posting, so k is
normally 0.

:func:`deliver` never loses track of what was stored: whatever stops it part-way (a transient
error after the client's retries, another refusal, a revoked key, a bug) comes back as
``error`` with the rows still ``pending``. :func:`post_with_bisection` is the raising form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from monetate_ingest.errors import MonetateIngestError
from monetate_ingest.monetate.exceptions import BadRequestError, TransientApiError

if TYPE_CHECKING:
    from monetate_ingest.delivery.batching import Batch


class Poster(Protocol):
    """What delivery needs of the client."""

    def post_body(self, schema: str, body: bytes, *, deadline: float | None = None) -> object: ...


@dataclass
class BisectResult:
    """Outcome of one batch: tags of stored rows, refused rows with reasons, POSTs spent."""

    posted: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)
    posts: int = 0

    def add(self, other: BisectResult) -> BisectResult:
        """This result and ``other``'s, one after the other (a new result)."""
        return BisectResult(
            self.posted + other.posted, self.refused + other.refused, self.posts + other.posts
        )


@dataclass
class Delivery(BisectResult):
    """:class:`BisectResult` plus what stopped it: ``error`` and the batches still ``pending``."""

    pending: list[Batch] = field(default_factory=list)
    error: Exception | None = None

    @property
    def pending_tags(self) -> list[int]:
        return [t for b in self.pending for t in b.lines]


class PartialDeliveryError(MonetateIngestError):
    """A transient failure part-way through a batch: ``posted`` are stored, ``pending`` is not."""

    kind = "transient"

    def __init__(self, result: BisectResult, pending: list[Batch], cause: TransientApiError) -> None:
        super().__init__(f"{sum(len(b) for b in pending)} rows not delivered: {cause}")
        self.result = result
        self.pending = pending
        self.cause = cause

    @property
    def posted(self) -> list[int]:
        return self.result.posted


def refusal_reason(exc: BadRequestError) -> str:
    """Monetate's own words for a refused single row, as one sentence."""
    parts: list[str] = []
    for err in exc.meta_errors[:3]:
        if isinstance(err, dict):
            text = err.get("message") or err.get("detail") or err.get("error") or str(err)
            fld = err.get("field")
            parts.append(f"{fld}: {text}" if fld and str(fld) not in str(text) else str(text))
        else:
            parts.append(str(err))
    detail = "; ".join(parts) or exc.message
    return f"Monetate refused the row: {detail}"


def deliver(client: Poster, schema: str, batch: Batch, *, deadline: float | None = None) -> Delivery:
    """Post ``batch``; on 400 bisect down to the refused rows. See the module docstring.

    Never raises for what a POST answers or throws: the exception is ``error`` and the rows not yet
    stored are ``pending`` (in order). ``deadline`` (a ``time.monotonic()`` instant, None: none) is
    handed to ``client.post_body``: no retry sleeps past it.
    """
    result = Delivery()
    stack: list[Batch] = [batch]
    while stack:
        current = stack.pop()
        result.posts += 1
        try:
            if deadline is None:  # callers without a deadline may pass clients without the keyword
                client.post_body(schema, current.body)
            else:
                client.post_body(schema, current.body, deadline=deadline)
        except BadRequestError as exc:
            if len(current) == 1:
                result.refused.append((current.lines[0], refusal_reason(exc)))
                continue
            left, right = current.split()
            stack.extend((right, left))  # left is posted first: rows keep their order
        except Exception as exc:  # the caller decides; what was stored stays known
            result.pending = [current, *reversed(stack)]
            result.error = exc
            return result
        else:
            result.posted.extend(current.lines)
    return result


def post_with_bisection(
    client: Poster, schema: str, batch: Batch, *, deadline: float | None = None
) -> BisectResult:
    """:func:`deliver`, raising: a transient error (after the client's own retries) becomes
    :class:`PartialDeliveryError` carrying what was stored so far and the batches still to
    deliver; any other error (``KeyRevokedError`` included) propagates as it was raised."""
    result = deliver(client, schema, batch, deadline=deadline)
    if result.error is None:
        return BisectResult(result.posted, result.refused, result.posts)
    done = BisectResult(result.posted, result.refused, result.posts)
    if isinstance(result.error, TransientApiError):
        raise PartialDeliveryError(done, result.pending, result.error) from result.error
    raise result.error
