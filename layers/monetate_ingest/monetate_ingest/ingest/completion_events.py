"""Completion events: one EventBridge event per file that ends (complete, partial or failed).

``source`` is ``monetate-ingest``, ``detail-type`` is ``File ingest complete`` / ``… failed`` /
``… partial``; ``detail`` carries the report's totals and its S3 location, so a pipeline can react
with a rule such as ``{"source": ["monetate-ingest"], "detail": {"status": ["failed"]}}``.
"""

from __future__ import annotations

import json
from typing import Any

from monetate_ingest.ingest.report import Report
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.observability import logger

SOURCE = "monetate-ingest"


def completion_detail(ref: FileRef, report: Report) -> dict[str, Any]:
    return {
        "status": report.status,
        "schema": ref.schema,
        "dry_run": ref.dry_run,
        "source": ref.source(),
        "counts": dict(report.counts.__dict__),
        "sync": dict(report.sync),
        "report": {"bucket": ref.bucket, "key": ref.report_key},
        "rejects": {"bucket": ref.bucket, "key": report.rejects_key} if report.rejects_key else None,
        "errors": [{"code": e.get("code"), "message": e.get("message")} for e in report.errors],
    }


class EventBridgePublisher:
    """Puts the event on ``bus``; a failure to publish is logged, never fails the file."""

    def __init__(self, bus: str = "default", client: Any = None) -> None:
        self.bus = bus
        self._client = client

    def __call__(self, ref: FileRef, report: Report) -> None:
        if self._client is None:
            import boto3

            self._client = boto3.client("events")
        entry = {
            "Source": SOURCE,
            "DetailType": f"File ingest {report.status}",
            "Detail": json.dumps(completion_detail(ref, report)),
            "EventBusName": self.bus,
        }
        try:
            result = self._client.put_events(Entries=[entry])
            if result.get("FailedEntryCount"):
                logger.warning("completion event not accepted", extra={"entries": result.get("Entries")})
        except Exception:  # publishing is best effort; the report in S3 is the record
            logger.exception("could not publish the completion event")
