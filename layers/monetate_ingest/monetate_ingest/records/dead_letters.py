"""Dead letters that explain themselves: what PostRecords sends to the DLQ, and how.

A dead-lettered message keeps its original body byte for byte (so SQS's own redrive replays it) —
or, when only some rows were refused, an envelope of just those rows — and carries
``error_type`` (a short code) and ``error_message`` (a sentence a person can act on) as message
attributes; ``original_message_id`` ties it to the logs. :class:`DeadLetter` is one such message,
:class:`SqsDeadLetters` sends it, :func:`attributes` gives its attributes with the reason cut so
that body and attributes fit :data:`MAX_SQS_MESSAGE_BYTES` (a cut says how much was left out).
How letters are cut to that size is :mod:`monetate_ingest.records.letters`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

#: The classic SQS limit (body + attributes); the service now accepts 1 MiB, but queues created
#: before that, or with a lower ``MaximumMessageSize``, do not. Every dead letter stays under it.
MAX_SQS_MESSAGE_BYTES = 256 * 1024
#: A reason longer than this is not read by a person anyway.
MAX_ERROR_MESSAGE_CHARS = 8_000
#: The shortest reason a letter is sent with: the start of the sentence and the count cut off.
MIN_ERROR_MESSAGE_CHARS = 200
ROWS_REJECTED = "rows_rejected"
UNKNOWN_SCHEMA = "unknown_schema"

# Characters SQS accepts in bodies and attribute values; anything else becomes U+FFFD.
_NOT_SQS_TEXT = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_TYPE = "String"


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


def _fixed(letter: DeadLetter) -> dict[str, str]:
    return {
        "error_type": sqs_text(letter.error_type)[:256] or "unknown",
        "original_message_id": sqs_text(letter.message_id)[:256] or "unknown",
    }


def room_for_message(letter: DeadLetter) -> int:
    """Bytes left for ``error_message`` once the body and the other attributes are counted."""
    used = len(letter.body.encode("utf-8")) + sum(
        len(k) + len(_TYPE) + len(v.encode("utf-8")) for k, v in _fixed(letter).items()
    )
    return MAX_SQS_MESSAGE_BYTES - used - len("error_message") - len(_TYPE)


def fits(letter: DeadLetter) -> bool:
    """Whether the letter fits SQS's limit with at least a short reason."""
    return room_for_message(letter) >= MIN_ERROR_MESSAGE_CHARS * 4


def attributes(letter: DeadLetter) -> dict[str, dict[str, str]]:
    """The message attributes, ``error_message`` shortened so body + attributes fit SQS's limit."""
    limit = min(MAX_ERROR_MESSAGE_CHARS, max(room_for_message(letter) // 4, MIN_ERROR_MESSAGE_CHARS))
    message = truncate(sqs_text(letter.error_message), limit)
    attrs = {k: {"DataType": _TYPE, "StringValue": v} for k, v in _fixed(letter).items()}
    attrs["error_message"] = {"DataType": _TYPE, "StringValue": message or letter.error_type}
    return attrs


def sqs_text(text: str) -> str:
    """``text`` with characters SQS refuses (NUL, lone surrogates …) replaced."""
    return _NOT_SQS_TEXT.sub("\ufffd", text)


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut ends with how many characters were left out."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 0)
    return f"{text[:keep]} … ({len(text) - keep} more characters left out)"


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
        part = f"rows[{r.index}]" + (f" field {r.field!r}" if r.field else "") + f": {r.reason[:500]}"
        if length + len(part) > MAX_ERROR_MESSAGE_CHARS - 120:
            parts.append(f"and {n - i} more row{'s' if n - i != 1 else ''} left out")
            break
        parts.append(part)
        length += len(part) + 2
    return head + "; ".join(parts) + ". Fix the rows (or the schema) and redrive."
