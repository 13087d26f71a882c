"""The records queue's ``maxReceiveCount``, read from its redrive policy: :class:`QueueReceiveLimits`.

PostRecords dead-letters a message that fails on its last receive itself, with the reason, rather
than letting SQS move it without one; for that it needs the count after which SQS moves it. The
queue's own ``RedrivePolicy`` says it (read once per container and queue, with the
``sqs:GetQueueAttributes`` permission the function has on its queue). When it cannot be read, the
message is left to SQS as before and its reason stays findable in the logs.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from monetate_ingest.observability import logger


class QueueReceiveLimits:
    """``for_queue(arn)`` → the queue's ``maxReceiveCount``, or None (no redrive policy, unreadable)."""

    def __init__(self, sqs_client: Any) -> None:
        self._sqs = sqs_client
        self._known: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def for_queue(self, queue_arn: str) -> int | None:
        with self._lock:
            if queue_arn in self._known:
                return self._known[queue_arn]
        try:
            attrs = self._sqs.get_queue_attributes(
                QueueUrl=queue_url(queue_arn), AttributeNames=["RedrivePolicy"]
            )
            policy = attrs.get("Attributes", {}).get("RedrivePolicy")
            limit = int(json.loads(policy)["maxReceiveCount"]) if policy else None
        except Exception as exc:  # not cached: the next batch asks again
            logger.warning(
                "could not read the queue's maxReceiveCount; messages failing on their last receive "
                "are left for SQS to move to the DLQ",
                extra={"queue": queue_arn, "error": f"{type(exc).__name__}: {str(exc)[:200]}"},
            )
            return None
        with self._lock:
            self._known[queue_arn] = limit
        return limit


def queue_url(queue_arn: str) -> str:
    """The queue URL of an SQS queue ARN (``arn:aws:sqs:<region>:<account>:<name>``)."""
    parts = queue_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {queue_arn[:200]!r}")
    _, partition, _, region, account, name = parts
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"
