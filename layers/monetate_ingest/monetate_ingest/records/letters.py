"""The dead letters of one message, each within SQS's 256 KiB: whole, or split into envelopes.

A message dead-lettered whole keeps its original body byte for byte when that fits with its
attributes. One that does not (queues now accept up to 1 MiB) is split — when it is an envelope —
into envelopes of consecutive rows, each with the same ``schema`` and ``source`` (``source.lines``
cut to the part's rows) and a reason saying which part of how many it is; redriving the parts
replays every row. A message of refused rows is an envelope of just those rows, split the same
way, each part listing the reasons of its own rows. Nothing is ever cut from a body: a body that
is not an envelope and does not fit, or a single row bigger than the limit, raises
:class:`LetterTooLargeError`; the message is then left to SQS (retried, and moved whole to the
DLQ after ``maxReceiveCount`` receives, its reason in the logs under its message id).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monetate_ingest.delivery.envelope import Envelope, build_envelope, dumps_compact
from monetate_ingest.errors import MonetateIngestError
from monetate_ingest.records.dead_letters import (
    MAX_ERROR_MESSAGE_CHARS,
    MAX_SQS_MESSAGE_BYTES,
    ROWS_REJECTED,
    DeadLetter,
    RowRefusal,
    describe_refusals,
    fits,
)

#: Bytes kept free in a part for its attributes (the reason is cut to what is left anyway).
_ATTRIBUTE_ROOM = 4 * MAX_ERROR_MESSAGE_CHARS + 1_024


class LetterTooLargeError(MonetateIngestError):
    """The message cannot be dead-lettered within SQS's limit without cutting its content."""

    kind = "transient"


def whole(
    message_id: str, body: str, envelope: Envelope | None, error_type: str, reason: str
) -> list[DeadLetter]:
    """The original body with the reason — or, too large for that, its rows in parts."""
    letter = DeadLetter(message_id, body, error_type, reason)
    if fits(letter):
        return [letter]
    if envelope is None:
        raise LetterTooLargeError(
            f"the message body ({len(body.encode('utf-8'))} bytes) is not an envelope and does not fit "
            f"a dead letter ({MAX_SQS_MESSAGE_BYTES} bytes with its attributes)"
        )
    indexes = list(range(len(envelope.rows)))
    parts = _split(envelope, indexes)
    return [
        DeadLetter(
            message_id,
            _part_body(envelope, part),
            error_type,
            f"part {n} of {len(parts)} (rows[{part[0]}] to rows[{part[-1]}] of the original message, "
            f"too large for one dead letter): {reason}",
        )
        for n, part in enumerate(parts, 1)
    ]


def refused_rows(
    message_id: str, envelope: Envelope, refusals: Sequence[RowRefusal], posted: int
) -> list[DeadLetter]:
    """Envelopes of just the refused rows (raw, as the producer sent them) with their reasons.

    ``source`` is kept; when it carries a ``lines`` list aligned with the rows (IngestFile's
    parking path), it is cut down to the part's rows' lines.
    """
    ordered = sorted(refusals, key=lambda r: r.index)
    by_index = {r.index: r for r in ordered}
    parts = _split(envelope, [r.index for r in ordered])
    total = len(envelope.rows)
    letters = []
    for n, part in enumerate(parts, 1):
        reason = describe_refusals([by_index[i] for i in part], total=total, posted=posted)
        if len(parts) > 1:
            reason = f"part {n} of {len(parts)} of the refused rows ({len(ordered)} in all): {reason}"
        letters.append(DeadLetter(message_id, _part_body(envelope, part), ROWS_REJECTED, reason))
    return letters


def _part_body(envelope: Envelope, indexes: list[int]) -> str:
    source = envelope.source
    lines = source.get("lines") if source is not None else None
    if source is not None and isinstance(lines, list) and len(lines) == len(envelope.rows):
        source = {**source, "lines": [lines[i] for i in indexes]}
    return build_envelope(envelope.schema, [envelope.rows[i] for i in indexes], source)


def _split(envelope: Envelope, indexes: list[int]) -> list[list[int]]:
    """``indexes`` cut into runs whose envelopes fit a dead letter with its attributes."""
    limit = MAX_SQS_MESSAGE_BYTES - _ATTRIBUTE_ROOM
    frame = _frame(envelope)
    parts: list[list[int]] = []
    current: list[int] = []
    size = frame
    for i in indexes:
        row_size = _size(envelope.rows[i]) + 12  # the comma, and its line number in source.lines
        if frame + row_size > limit:
            raise LetterTooLargeError(
                f"rows[{i}] alone ({row_size} bytes) does not fit a dead letter "
                f"({MAX_SQS_MESSAGE_BYTES} bytes)"
            )
        if current and size + row_size > limit:
            parts.append(current)
            current, size = [], frame
        current.append(i)
        size += row_size
    if current:
        parts.append(current)
    return [half for part in parts for half in _verified(envelope, part, limit)]


def _verified(envelope: Envelope, part: list[int], limit: int) -> list[list[int]]:
    """``part`` as built; halved while its body is over ``limit`` (escaping can grow a body)."""
    if len(part) == 1 or len(_part_body(envelope, part).encode("utf-8")) <= limit:
        return [part]
    mid = len(part) // 2
    return _verified(envelope, part[:mid], limit) + _verified(envelope, part[mid:], limit)


def _frame(envelope: Envelope) -> int:
    """Bytes of the envelope around its rows (``source.lines`` counted with the rows)."""
    source = envelope.source
    if source is not None and isinstance(source.get("lines"), list):
        source = {**source, "lines": []}
    data: dict[str, Any] = {"schema": envelope.schema, "rows": []}
    if source is not None:
        data["source"] = source
    return len(dumps_compact(data).encode("utf-8"))


def _size(row: Any) -> int:
    return len(dumps_compact(row).encode("utf-8"))
