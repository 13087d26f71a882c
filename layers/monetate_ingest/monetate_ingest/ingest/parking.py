"""Parking: rows IngestFile could not deliver go to the records queue for PostRecords."""

from __future__ import annotations

import json
from typing import Any

from monetate_ingest.delivery.bisection import PartialDeliveryError
from monetate_ingest.delivery.envelope import build_envelope
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.ingest.units import UnitOutcome
from monetate_ingest.observability import logger

#: SQS allows 256 KiB per message; leave room for the envelope and attributes.
MAX_MESSAGE_BYTES = 240_000


def park_rows(sqs: Any, queue_url: str, ref: FileRef, rows: list[dict[str, Any]], lines: list[int]) -> int:
    """Send ``rows`` as one or more envelopes; returns the number of messages sent."""
    sent = 0
    start = 0
    while start < len(rows):
        end, size = start, 0
        while end < len(rows):
            row_size = len(json.dumps(rows[end], ensure_ascii=False).encode()) + 8
            if end > start and size + row_size > MAX_MESSAGE_BYTES:
                break
            size += row_size
            end += 1
        source = {**ref.source(), "lines": lines[start:end]}
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=build_envelope(ref.schema, rows[start:end], source=source),
            MessageAttributes={
                "origin": {"DataType": "String", "StringValue": "ingest_file"},
            },
        )
        sent += 1
        start = end
    return sent


def park_undelivered(sqs: Any, queue_url: str | None, ref: FileRef, exc: PartialDeliveryError) -> UnitOutcome:
    """Park the rows Monetate kept failing on; the outcome keeps what was posted or refused."""
    if queue_url is None:  # dry runs never post, so only a misconfiguration gets here
        raise exc
    rows = [r for b in exc.pending for r in b.rows]
    lines = [ln for b in exc.pending for ln in b.lines]
    park_rows(sqs, queue_url, ref, rows, lines)
    logger.warning(
        "parked rows on the records queue after Monetate kept failing",
        extra={"file": ref.identity, "rows": len(rows), "cause": str(exc.cause)},
    )
    return UnitOutcome(
        posted=exc.result.posted, refused=exc.result.refused, parked=len(rows), posts=exc.result.posts
    )
