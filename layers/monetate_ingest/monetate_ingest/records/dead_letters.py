"""Dead letters that explain themselves: what PostRecords sends to the DLQ, and how.

A dead-lettered message keeps its original body byte for byte (so SQS's own redrive replays it) —
or, when only some rows were refused, an envelope of just those rows — and carries
``error_type`` (a short code) and ``error_message`` (a sentence a person can act on) as message
attributes; ``original_message_id`` ties it to the logs. :class:`DeadLetter` is one such message,
:class:`SqsDeadLetters` sends it, :func:`attributes` shortens the reason so body and attributes fit
SQS's size limit (reasons listing thousands of rows are cut with a count of what was left out).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from monetate_ingest.delivery.envelope import Envelope, build_envelope

#: The classic SQS limit (body + attributes); the service now accepts 1 MiB, but queues created
#: before that, or with a lower ``MaximumMessageSize``, do not. We stay under the old one.
MAX_SQS_MESSAGE_BYTES = 256 * 1024
#: A reason longer than this is not read by a person anyway.
MAX_ERROR_MESSAGE_CHARS = 8_000
ROWS_REJECTED = "rows_rejected"
UNKNOWN_SCHEMA = "unknown_schema"

# Characters SQS accepts in bodies and attribute values; anything else becomes U+FFFD.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass(frozen=True)
class DeadLetter:
    """One message for the DLQ."""

    message_id: str  # the original SQS message id
    body: str
    error_type: str
    error_message: str


@dataclass(frozen=True)
class RowRefusal:
    """A row of a message that will not be posted: its index in the message's rows and why."""

    index: int
    reason: str
    field: str | None = None


class DeadLetterSink(Protocol):
    def send(self, letter: DeadLetter) -> None:
        """Send one dead letter; raise on failure (the caller then leaves the message to SQS)."""
        ...


class SqsDeadLetters:
    """:class:`DeadLetterSink` on an SQS queue (``RECORDS_DLQ_URL``)."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._url = queue_url

    def send(self, letter: DeadLetter) -> None:
        self._sqs.send_message(
            QueueUrl=self._url, MessageBody=letter.body, MessageAttributes=attributes(letter)
        )


def attributes(letter: DeadLetter) -> dict[str, dict[str, str]]:
    """The message attributes, ``error_message`` shortened so body + attributes fit SQS's limit."""
    fixed = {
        "error_type": sqs_text(letter.error_type)[:256] or "unknown",
        "original_message_id": sqs_text(letter.message_id)[:256] or "unknown",
    }
    used = len(letter.body.encode("utf-8")) + sum(
        len(k) + len("String") + len(v.encode("utf-8")) for k, v in fixed.items()
    )
    budget = MAX_SQS_MESSAGE_BYTES - used - len("error_message") - len("String") - 64
    message = truncate(sqs_text(letter.error_message), min(MAX_ERROR_MESSAGE_CHARS, max(budget // 4, 80)))
    attrs = {k: {"DataType": "String", "StringValue": v} for k, v in fixed.items()}
    attrs["error_message"] = {"DataType": "String", "StringValue": message or letter.error_type}
    return attrs


def sqs_text(text: str) -> str:
    """``text`` with characters SQS refuses (NUL, lone surrogates …) replaced."""
    return _NOT_SQS_TEXT.sub("\ufffd", text)


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    marker = " … (truncated)"
    return text[: max(limit - len(marker), 0)] + marker


def refused_rows_letter(
    message_id: str, envelope: Envelope, refusals: Sequence[RowRefusal], posted: int
) -> DeadLetter:
    """An envelope of just the refused rows (raw, as the producer sent them) with the reasons.

    ``source`` is kept; when it carries a ``lines`` list aligned with the rows (IngestFile's
    parking path), it is cut down to the refused rows' lines.
    """
    ordered = sorted(refusals, key=lambda r: r.index)
    rows = [envelope.rows[r.index] for r in ordered]
    source = envelope.source
    if (
        source is not None
        and isinstance(source.get("lines"), list)
        and len(source["lines"]) == len(envelope.rows)
    ):
        source = {**source, "lines": [source["lines"][r.index] for r in ordered]}
    body = build_envelope(envelope.schema, rows, source)
    return DeadLetter(
        message_id=message_id,
        body=body,
        error_type=ROWS_REJECTED,
        error_message=describe_refusals(ordered, total=len(envelope.rows), posted=posted),
    )


def describe_refusals(refusals: Sequence[RowRefusal], *, total: int, posted: int) -> str:
    """``2 of 5 rows were refused (3 posted); indexes are positions in the original message's
    rows: rows[1] field 'price': …; rows[4]: …`` — cut with a count when very long."""
    n = len(refusals)
    head = (
        f"{n} of {total} row{'s' if total != 1 else ''} {'were' if n != 1 else 'was'} refused"
        + (f" ({posted} posted); this message holds only the refused rows" if posted else "")
        + "; indexes are positions in the original message's rows: "
    )
    parts: list[str] = []
    length = len(head)
    for i, r in enumerate(refusals):
        part = f"rows[{r.index}]" + (f" field {r.field!r}" if r.field else "") + f": {r.reason}"
        if length + len(part) > MAX_ERROR_MESSAGE_CHARS - 60:
            parts.append(f"and {n - i} more")
            break
        parts.append(part)
        length += len(part) + 2
    return head + "; ".join(parts) + ". Fix the rows (or the schema) and redrive."
