"""A local stand-in for Lambda's SQS event source mapping.

It does what the mapping does for PostRecords, against moto (or any SQS endpoint):

* receives up to ``batch_size`` messages (several ``ReceiveMessage`` calls of at most 10, as the
  mapping does) and, with a ``batching_window``, keeps gathering until the batch is full or the
  window has passed;
* builds the exact Lambda SQS event (``messageId``, ``receiptHandle``, ``body``, ``attributes``
  with ``ApproximateReceiveCount`` from SQS, ``messageAttributes`` in Lambda's camel-case shape,
  ``md5OfBody``, ``md5OfMessageAttributes``, ``eventSource``, ``eventSourceARN``, ``awsRegion``)
  and calls the handler in-process with a fake Lambda context;
* with ``ReportBatchItemFailures`` semantics: deletes the messages not listed in
  ``batchItemFailures``; leaves the listed ones (an exception, or a response naming an id that is
  not in the batch, fails the whole batch, as Lambda does). A failed message becomes visible again
  after the queue's visibility timeout, or after ``failure_visibility`` seconds when set (0 in
  tests: retry at once) via ``ChangeMessageVisibility``;
* receive counts are SQS's own, and after ``maxReceiveCount`` receives SQS's redrive policy moves a
  message to the DLQ. moto enforces the redrive policy on receive (checked in
  ``tests/functional/test_sqs_poller.py``); for an emulator that does not, the poller moves a
  message whose ``ApproximateReceiveCount`` exceeds ``maxReceiveCount`` itself instead of
  delivering it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from local.lambda_context import FakeLambdaContext

_log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
SQS_MAX_RECEIVE = 10


@dataclass
class PollResult:
    """One invocation: the message ids delivered, deleted and left for a retry."""

    received: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    moved_to_dlq: list[str] = field(default_factory=list)  # by the poller's own redrive fallback
    response: Any = None
    error: str | None = None


class SqsPoller:
    """Polls ``queue_url`` and feeds ``handler`` like the event source mapping; see the module doc."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        batching_window: float = 0.0,
        visibility_timeout: int | None = None,
        failure_visibility: int | None = None,
        function_name: str = "post-records",
        function_timeout: float = 60.0,
        context_factory: Callable[[], Any] | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError("batch_size must be 1..10000 (the mapping's limits)")
        if batch_size > 10 and batching_window <= 0:
            raise ValueError("a batch_size above 10 needs a batching_window, as in Lambda")
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.batching_window = batching_window
        self.visibility_timeout = visibility_timeout
        self.failure_visibility = failure_visibility
        self.context_factory = context_factory or (
            lambda: FakeLambdaContext(function_name, timeout_seconds=function_timeout)
        )
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        self.queue_arn: str = attrs["QueueArn"]
        self.region = self.queue_arn.split(":")[3]
        policy = json.loads(attrs["RedrivePolicy"]) if attrs.get("RedrivePolicy") else None
        self.max_receive_count = int(policy["maxReceiveCount"]) if policy else None
        self.dlq_url = self._url_of(policy["deadLetterTargetArn"]) if policy else None
        self.invocations = 0

    # ---- the mapping's loop ------------------------------------------------------------------

    def poll_once(self) -> PollResult | None:
        """Receive one batch and invoke the handler; None when nothing was received."""
        messages = self._receive_batch()
        if not messages:
            return None
        result = PollResult()
        deliver: list[dict[str, Any]] = []
        for msg in messages:
            if self._over_receive_limit(msg):
                self._move_to_dlq(msg)
                result.moved_to_dlq.append(msg["MessageId"])
            else:
                deliver.append(msg)
        if not deliver:
            return result
        event = {"Records": [lambda_sqs_record(m, self.queue_arn, self.region) for m in deliver]}
        result.received = [m["MessageId"] for m in deliver]
        self.invocations += 1
        failed_ids: set[str]
        try:
            result.response = self.handler(event, self.context_factory())
            failed_ids = _failed_ids(result.response, set(result.received))
        except Exception as exc:  # a function error: the whole batch goes back to the queue
            _log.warning("handler raised; the whole batch will be retried: %s", exc)
            result.error = f"{type(exc).__name__}: {exc}"
            failed_ids = set(result.received)
        by_id = {m["MessageId"]: m for m in deliver}
        result.failed = [mid for mid in result.received if mid in failed_ids]
        result.deleted = [mid for mid in result.received if mid not in failed_ids]
        self._delete([by_id[mid] for mid in result.deleted])
        if self.failure_visibility is not None:
            for mid in result.failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=by_id[mid]["ReceiptHandle"],
                    VisibilityTimeout=self.failure_visibility,
                )
        return result

    def drain(self, max_seconds: float = 30.0, *, include_in_flight: bool = False) -> list[PollResult]:
        """Poll until the queue has no visible message (and, with ``include_in_flight``, none in
        flight either) or ``max_seconds`` have passed; returns every invocation's result."""
        deadline = time.monotonic() + max_seconds
        results: list[PollResult] = []
        while time.monotonic() < deadline:
            result = self.poll_once()
            if result is not None:
                results.append(result)
                continue
            visible, in_flight = self._depth()
            if visible == 0 and (in_flight == 0 or not include_in_flight):
                break
            time.sleep(0.05)
        return results

    # ---- helpers -----------------------------------------------------------------------------

    def _receive_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        window_end = time.monotonic() + self.batching_window
        while len(batch) < self.batch_size:
            kwargs: dict[str, Any] = {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": min(SQS_MAX_RECEIVE, self.batch_size - len(batch)),
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
                "WaitTimeSeconds": 0,
            }
            if self.visibility_timeout is not None:
                kwargs["VisibilityTimeout"] = self.visibility_timeout
            got = self.sqs.receive_message(**kwargs).get("Messages", [])
            batch.extend(got)
            if got:
                continue
            if time.monotonic() >= window_end:
                break
            time.sleep(min(0.05, max(0.0, window_end - time.monotonic())))
        return batch

    def _over_receive_limit(self, msg: dict[str, Any]) -> bool:
        if self.max_receive_count is None or self.dlq_url is None:
            return False
        count = int(msg.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        return count > self.max_receive_count

    def _move_to_dlq(self, msg: dict[str, Any]) -> None:
        attrs = msg.get("MessageAttributes") or {}
        kwargs: dict[str, Any] = {"QueueUrl": self.dlq_url, "MessageBody": msg["Body"]}
        if attrs:
            kwargs["MessageAttributes"] = attrs
        self.sqs.send_message(**kwargs)
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            if not chunk:
                continue
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )

    def _depth(self) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0)), int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def _url_of(self, arn: str) -> str:
        _, _, _, _, account, name = arn.split(":")
        return str(self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def _failed_ids(response: Any, batch: set[str]) -> set[str]:
    """Lambda's reading of a partial batch response: an invalid one fails the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set()
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    failed: set[str] = set()
    for item in items:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or ident not in batch:
            return set(batch)
        failed.add(ident)
    return failed


def lambda_sqs_record(msg: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the Lambda SQS event for a ``ReceiveMessage`` result."""
    attributes = {
        k: str(v)
        for k, v in (msg.get("Attributes") or {}).items()
        if k
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "SequenceNumber",
            "MessageGroupId",
            "MessageDeduplicationId",
            "AWSTraceHeader",
            "DeadLetterQueueSourceArn",
        )
    }
    message_attributes = {
        name: _lambda_attribute(value) for name, value in (msg.get("MessageAttributes") or {}).items()
    }
    record: dict[str, Any] = {
        "messageId": msg["MessageId"],
        "receiptHandle": msg["ReceiptHandle"],
        "body": msg["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": msg.get("MD5OfBody") or hashlib.md5(msg["Body"].encode("utf-8")).hexdigest(),  # noqa: S324
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message_attributes:
        record["md5OfMessageAttributes"] = msg.get("MD5OfMessageAttributes") or md5_of_message_attributes(
            msg["MessageAttributes"]
        )
    return record


def _lambda_attribute(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        raw = value["BinaryValue"]
        out["binaryValue"] = base64.b64encode(raw if isinstance(raw, bytes) else str(raw).encode()).decode()
    return out


def md5_of_message_attributes(attributes: dict[str, dict[str, Any]]) -> str:
    """SQS's MD5 of message attributes (names sorted; length-prefixed name, type, value)."""
    digest = hashlib.md5()  # noqa: S324 - SQS's own checksum, not security
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        digest.update(_prefixed(name.encode()))
        digest.update(_prefixed(data_type.encode()))
        if "StringValue" in value:
            digest.update(b"\x01" + _prefixed(str(value["StringValue"]).encode()))
        else:
            raw = value["BinaryValue"]
            digest.update(b"\x02" + _prefixed(raw if isinstance(raw, bytes) else base64.b64decode(raw)))
    return digest.hexdigest()


def _prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def send_batch_of_messages(sqs: Any, queue_url: str, bodies: list[str]) -> list[str]:
    """Send ``bodies`` (10 per call); returns their message ids in order."""
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        resp = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
        )
        by_id = {e["Id"]: e["MessageId"] for e in resp.get("Successful", [])}
        if resp.get("Failed"):
            raise RuntimeError(f"send_message_batch failed: {resp['Failed']}")
        ids.extend(by_id[str(i)] for i in range(len(chunk)))
    return ids
