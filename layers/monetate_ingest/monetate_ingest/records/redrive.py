"""Redrive: after a fix, move the DLQ's messages back to the records queue (``redrive``).

In AWS, SQS's own redrive (``StartMessageMoveTask``, the console's "Start DLQ redrive") is the
right tool: it runs server-side, keeps bodies and attributes, and needs no Lambda. Dead letters
keep the original body byte for byte (or an envelope of just the refused rows), so a redriven
message is simply processed again.

Emulators (moto) do not implement the move task, so where the service refuses it we fall back to
receive → send → delete in batches, which gives the same result for a queue nobody else is draining:
each message is sent to the queue before it is deleted from the DLQ (a crash in between duplicates,
never loses; PostRecords' idempotency absorbs the duplicate).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

_log = logging.getLogger(__name__)

Method = Literal["auto", "task", "copy"]
#: Error codes by which an SQS endpoint says it does not implement an action.
_UNSUPPORTED = {"500", "501", "NotImplemented", "UnsupportedOperation", "InvalidAction"}


def redrive(
    sqs_client: Any,
    dlq_url: str,
    queue_url: str,
    *,
    method: Method = "auto",
    wait_seconds: float = 0.0,
    visibility_timeout: int = 60,
) -> int:
    """Move the DLQ's messages to ``queue_url``; returns how many were moved (or, for SQS's own
    asynchronous move task, how many the DLQ held when the task started).

    ``method``: ``task`` (SQS's ``StartMessageMoveTask`` only), ``copy`` (receive/send/delete
    only) or ``auto`` (the task, falling back to copying when the endpoint does not support it).
    ``wait_seconds`` > 0 waits for the task to finish.
    """
    if method in ("auto", "task"):
        try:
            return _move_task(sqs_client, dlq_url, queue_url, wait_seconds)
        except Exception as exc:
            if method == "task" or not _unsupported(exc):
                raise
            _log.info("the SQS endpoint has no message move task (%s); copying instead", _code(exc))
    return _copy(sqs_client, dlq_url, queue_url, visibility_timeout)


def _move_task(sqs: Any, dlq_url: str, queue_url: str, wait_seconds: float) -> int:
    depth = _depth(sqs, dlq_url)
    source, destination = _arn(sqs, dlq_url), _arn(sqs, queue_url)
    handle = sqs.start_message_move_task(SourceArn=source, DestinationArn=destination)["TaskHandle"]
    _log.info("started SQS message move task %s for %d message(s)", handle, depth)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=1).get("Results", [])
        if tasks and tasks[0].get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
            return int(tasks[0].get("ApproximateNumberOfMessagesMoved", depth))
        time.sleep(1.0)
    return depth


def _copy(sqs: Any, dlq_url: str, queue_url: str, visibility_timeout: int) -> int:
    """Receive up to 10, send each to the queue, then delete what was sent; until the DLQ is empty.

    Bounded by the depth seen at the start (plus one batch), so messages dead-lettered again while
    this runs are not cycled forever.
    """
    budget = _depth(sqs, dlq_url) + 10
    moved = 0
    while moved < budget:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=visibility_timeout,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            break
        sent: list[dict[str, str]] = []
        for i, msg in enumerate(messages):
            kwargs: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": msg["Body"]}
            if msg.get("MessageAttributes"):
                kwargs["MessageAttributes"] = msg["MessageAttributes"]
            sqs.send_message(**kwargs)
            sent.append({"Id": str(i), "ReceiptHandle": msg["ReceiptHandle"]})
        sqs.delete_message_batch(QueueUrl=dlq_url, Entries=sent)
        moved += len(sent)
    _log.info("moved %d message(s) from the DLQ back to the queue", moved)
    return moved


def _depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attrs["Attributes"].get("ApproximateNumberOfMessages", 0))


def _arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(exc).__name__


def _unsupported(exc: Exception) -> bool:
    return _code(exc) in _UNSUPPORTED or isinstance(exc, (NotImplementedError, AttributeError))
