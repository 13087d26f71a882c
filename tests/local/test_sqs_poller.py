"""The local event source mapping (local/sqs_poller.py) against moto, and redrive."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from monetate_ingest.delivery.envelope import build_envelope
from monetate_ingest.monetate.factory import build_client
from monetate_ingest.records.handler import build_deps, make_handler
from monetate_ingest.records.redrive import redrive
from monetate_ingest.settings import RecordsSettings

from local.aws import MAX_RECEIVE_COUNT, MotoServer, provision
from local.sandbox import MonetateSandbox
from local.sqs_poller import SqsPoller, md5_of_message_attributes, send_batch_of_messages

_names = itertools.count()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def queues(moto: MotoServer) -> tuple[Any, str, str]:
    """A records queue with the template's redrive policy (maxReceiveCount 5) and its DLQ."""
    n = next(_names)
    res = provision(moto, secret_value="{}", prefix=f"poll{n}", secret_name=f"poll-secret{n}")
    return moto.client("sqs"), res.records_queue_url, res.records_dlq_url


class Recorder:
    """A handler that records events and fails the message ids it is told to."""

    def __init__(
        self, fail: set[str] | None = None, fail_bodies: set[str] | None = None, raise_: bool = False
    ):
        self.events: list[dict[str, Any]] = []
        self.fail = fail or set()
        self.fail_bodies = fail_bodies or set()
        self.raise_ = raise_

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        assert context.get_remaining_time_in_millis() > 0 and context.aws_request_id
        if self.raise_:
            raise RuntimeError("boom")
        failures = [
            {"itemIdentifier": r["messageId"]}
            for r in event["Records"]
            if r["messageId"] in self.fail or r["body"] in self.fail_bodies
        ]
        return {"batchItemFailures": failures}


def depth(sqs: Any, url: str) -> tuple[int, int]:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_the_event_has_lambdas_shape_and_successes_are_deleted(queues: tuple[Any, str, str]) -> None:
    # Given two messages, one with message attributes
    sqs, queue, _ = queues
    sqs.send_message(QueueUrl=queue, MessageBody="ok")
    sqs.send_message(
        QueueUrl=queue,
        MessageBody="fails",
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "ingest_file"}},
    )
    handler = Recorder(fail_bodies={"fails"})
    poller = SqsPoller(sqs, queue, handler, batch_size=10, visibility_timeout=30)
    # When one batch is polled
    result = poller.poll_once()
    # Then the handler got a real-shaped event
    assert result is not None and len(result.received) == 2
    records = {r["body"]: r for r in handler.events[0]["Records"]}
    rec = records["fails"]
    assert rec["eventSource"] == "aws:sqs" and rec["eventSourceARN"] == poller.queue_arn
    assert rec["awsRegion"] == "us-east-1" and rec["receiptHandle"]
    assert rec["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(rec["attributes"])
    assert rec["md5OfBody"] == hashlib.md5(b"fails").hexdigest()  # noqa: S324
    assert rec["messageAttributes"] == {
        "origin": {
            "stringValue": "ingest_file",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert rec["md5OfMessageAttributes"] == md5_of_message_attributes(
        {"origin": {"DataType": "String", "StringValue": "ingest_file"}}
    )
    assert "md5OfMessageAttributes" not in records["ok"]
    # And the success was deleted while the failure stays in flight until its visibility timeout
    assert result.deleted == [records["ok"]["messageId"]] and result.failed == [rec["messageId"]]
    assert depth(sqs, queue) == (0, 1)


def test_a_failure_with_visibility_zero_is_redelivered_with_a_higher_receive_count(
    queues: tuple[Any, str, str],
) -> None:
    sqs, queue, _ = queues
    sqs.send_message(QueueUrl=queue, MessageBody="flaky")
    handler = Recorder(fail_bodies={"flaky"})
    poller = SqsPoller(sqs, queue, handler, visibility_timeout=30, failure_visibility=0)
    poller.poll_once()
    poller.poll_once()
    counts = [e["Records"][0]["attributes"]["ApproximateReceiveCount"] for e in handler.events]
    assert counts == ["1", "2"]


def test_a_poison_message_reaches_the_dlq_after_max_receive_count(queues: tuple[Any, str, str]) -> None:
    # Given a message the handler always fails (transiently) and retries made immediate
    sqs, queue, dlq = queues
    sqs.send_message(QueueUrl=queue, MessageBody="poison")
    sqs.send_message(QueueUrl=queue, MessageBody="fine")
    handler = Recorder(fail_bodies={"poison"})
    poller = SqsPoller(sqs, queue, handler, visibility_timeout=30, failure_visibility=0)
    # When the poller drains the queue
    poller.drain(max_seconds=20)
    # Then the poison message was delivered maxReceiveCount times, then moved to the DLQ by SQS
    deliveries = [r for e in handler.events for r in e["Records"] if r["body"] == "poison"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in deliveries] == [
        str(i) for i in range(1, MAX_RECEIVE_COUNT + 1)
    ]
    assert depth(sqs, queue) == (0, 0)
    moved = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in moved] == ["poison"]


def test_a_handler_error_fails_the_whole_batch(queues: tuple[Any, str, str]) -> None:
    sqs, queue, _ = queues
    send_batch_of_messages(sqs, queue, ["a", "b"])
    poller = SqsPoller(sqs, queue, Recorder(raise_=True), visibility_timeout=30)
    result = poller.poll_once()
    assert result is not None and result.error and sorted(result.failed) == sorted(result.received)
    assert result.deleted == []


def test_an_unknown_item_identifier_fails_the_whole_batch(queues: tuple[Any, str, str]) -> None:
    sqs, queue, _ = queues
    send_batch_of_messages(sqs, queue, ["a", "b"])

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}

    poller = SqsPoller(sqs, queue, handler, visibility_timeout=30)
    result = poller.poll_once()
    assert result is not None and result.deleted == [] and len(result.failed) == 2


def test_batch_size_and_batching_window(queues: tuple[Any, str, str]) -> None:
    # Given 25 messages
    sqs, queue, _ = queues
    send_batch_of_messages(sqs, queue, [f"m{i}" for i in range(25)])
    # When polled with batch size 10, then with 25 and a batching window
    small = Recorder()
    SqsPoller(sqs, queue, small, batch_size=10).poll_once()
    big = Recorder()
    SqsPoller(sqs, queue, big, batch_size=25, batching_window=0.2).drain(max_seconds=10)
    # Then the first invocation held 10 and the second the other 15
    assert [len(e["Records"]) for e in small.events] == [10]
    assert [len(e["Records"]) for e in big.events] == [15]


def test_the_real_handler_behind_the_poller_dead_letters_with_reasons_and_retries_the_rest(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given PostRecords wired to moto and the sandbox, with Monetate failing every POST
    n = next(_names)
    res = provision(moto, secret_value=secret_text, prefix=f"real{n}", secret_name=f"real-secret{n}")
    sandbox.add_schema(
        {"name": "visits", "fields": {"customer_id": {"data_type": "STRING", "identifier": True}}}
    )
    settings = RecordsSettings.from_env(
        res.function_env(retailer="acme", api_url=sandbox.url, HTTP_MAX_RETRIES="1")
    )
    sm, sqs = moto.client("secretsmanager"), moto.client("sqs")

    def fetch(secret_id: str, **_: Any) -> str:
        return str(sm.get_secret_value(SecretId=secret_id)["SecretString"])

    client = build_client(settings.monetate, secrets_fetch=fetch, sleep=lambda s: None)
    handler = make_handler(
        build_deps(settings, client=client, sqs_client=sqs, dynamodb_client=moto.client("dynamodb"))
    )
    sandbox.faults.error_rate = 1.0
    sandbox.faults.apply_to = "post"
    good = build_envelope("visits", [{"customer_id": "v1"}])
    send_batch_of_messages(sqs, res.records_queue_url, [good, "poison: not json"])
    poller = SqsPoller(sqs, res.records_queue_url, handler, visibility_timeout=30, failure_visibility=0)
    # When the poller drains the queue
    poller.drain(max_seconds=20)
    # Then the poison message is dead-lettered by PostRecords with its reason on the first delivery,
    # and the undeliverable one ends in the DLQ after maxReceiveCount receives
    letters = sqs.receive_message(
        QueueUrl=res.records_dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    by_body = {m["Body"]: m for m in letters}
    assert set(by_body) == {good, "poison: not json"}
    assert by_body["poison: not json"]["MessageAttributes"]["error_type"]["StringValue"] == "invalid_json"
    # (dead-lettered by PostRecords on its last receive, with the reason, rather than moved by SQS)
    assert by_body[good]["MessageAttributes"]["error_type"]["StringValue"] == "retries_exhausted"
    assert poller.invocations == MAX_RECEIVE_COUNT
    # And after the fix, redrive puts both back; the good one is posted, the poison one returns
    for m in letters:  # make them visible again for the redrive
        sqs.change_message_visibility(
            QueueUrl=res.records_dlq_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
        )
    sandbox.faults.error_rate = 0.0
    assert redrive(sqs, res.records_dlq_url, res.records_queue_url) == 2
    poller.drain(max_seconds=10)
    assert [r["customer_id"] for r in sandbox.rows("visits")] == ["v1"]
    back = sqs.receive_message(QueueUrl=res.records_dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in back] == ["poison: not json"]


def test_redrive_copies_when_the_service_has_no_move_task(queues: tuple[Any, str, str]) -> None:
    # Given 23 messages in the DLQ (moto has no StartMessageMoveTask)
    sqs, queue, dlq = queues
    send_batch_of_messages(sqs, dlq, [f"d{i}" for i in range(23)])
    # When redriven
    moved = redrive(sqs, dlq, queue, method="copy")
    # Then all are back in the queue and the DLQ is empty
    assert moved == 23
    assert depth(sqs, dlq) == (0, 0) and depth(sqs, queue) == (23, 0)
