"""Parking: rows IngestFile could not deliver go to the records queue for PostRecords.

Each envelope carries its rows' source lines and stays within one SQS message: rows are grouped by
their encoded size, and a body that still comes out too large is halved. A row too large for any
message cannot be parked: it is refused with that reason, so it still ends in the rejects file.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monetate_ingest.delivery.bisection import PartialDeliveryError
from monetate_ingest.delivery.envelope import build_envelope
from monetate_ingest.ingest.exceptions import ParkingError, describe_aws_error
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.ingest.units import UnitOutcome
from monetate_ingest.observability import logger

#: SQS takes 262,144 bytes per message, attributes included; bodies stay under this.
MAX_MESSAGE_BYTES = 250_000
_ATTRIBUTES = {"origin": {"DataType": "String", "StringValue": "ingest_file"}}


def park_rows(
    sqs: Any,
    queue_url: str,
    ref: FileRef,
    rows: Sequence[dict[str, Any]],
    lines: Sequence[int],
    *,
    source_time: float | None = None,
    limit: int = MAX_MESSAGE_BYTES,
) -> tuple[int, list[tuple[int, int]]]:
    """Send ``rows`` as envelopes of at most ``limit`` bytes.

    ``source_time`` (the file's ``LastModified``, epoch seconds) goes into each envelope's
    ``source.time``, so change-only sync in PostRecords dates the rows by their file, not by when
    they were parked. Returns the number of messages sent and ``(line, bytes)`` of each row too
    large to park.
    """
    source = {**ref.source(), **({"time": source_time} if source_time is not None else {})}
    bodies, too_large = _envelopes(ref.schema, source, list(rows), list(lines), limit)
    for body, count in bodies:
        try:
            sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=_ATTRIBUTES)
        except Exception as exc:  # botocore's errors, named for the report
            raise ParkingError(
                f"could not park {count} rows on the records queue {queue_url} (RECORDS_QUEUE_URL): "
                f"{describe_aws_error(exc)}",
                queue=queue_url,
            ) from exc
    return len(bodies), too_large


def _envelopes(
    schema: str, source: dict[str, Any], rows: list[dict[str, Any]], lines: list[int], limit: int
) -> tuple[list[tuple[str, int]], list[tuple[int, int]]]:
    """(body, rows) of each message, and the rows no message can hold."""
    body = build_envelope(schema, rows, source={**source, "lines": lines})
    size = len(body.encode())
    if size <= limit:
        return [(body, len(rows))], []
    if len(rows) == 1:
        return [], [(lines[0], size)]
    mid = len(rows) // 2
    first, refused_first = _envelopes(schema, source, rows[:mid], lines[:mid], limit)
    second, refused_second = _envelopes(schema, source, rows[mid:], lines[mid:], limit)
    return first + second, refused_first + refused_second


def park_undelivered(
    sqs: Any,
    queue_url: str | None,
    ref: FileRef,
    exc: PartialDeliveryError,
    *,
    source_time: float | None = None,
) -> UnitOutcome:
    """Park the rows Monetate kept failing on; the outcome keeps what was posted or refused."""
    if not queue_url:  # dry runs never post, so only a misconfiguration gets here
        raise ParkingError(
            f"Monetate kept failing ({exc.cause.message}) and RECORDS_QUEUE_URL is not set, so the "
            f"{sum(len(b.rows) for b in exc.pending)} rows left could not be parked on the records queue",
            queue=None,
        ) from exc
    rows = [r for b in exc.pending for r in b.rows]
    lines = [ln for b in exc.pending for ln in b.lines]
    _, too_large = park_rows(sqs, queue_url, ref, rows, lines, source_time=source_time)
    refused = [
        (
            line,
            f"Monetate kept failing ({exc.cause.message}) and the row is too large to park on the records "
            f"queue ({size:,} bytes as an envelope; an SQS message holds {MAX_MESSAGE_BYTES:,})",
        )
        for line, size in too_large
    ]
    logger.warning(
        "parked rows on the records queue after Monetate kept failing",
        extra={"file": ref.identity, "rows": len(rows) - len(refused), "cause": str(exc.cause)},
    )
    return UnitOutcome(
        posted=exc.result.posted,
        refused=exc.result.refused + refused,
        parked=len(rows) - len(refused),
        posts=exc.result.posts,
    )
