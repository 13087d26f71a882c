"""PostRecords' change-only sync through the real handler: moto's ledger table, the sandbox."""

from __future__ import annotations

from typing import Any

import pytest
from monetate_ingest.delivery.envelope import build_envelope

from local.aws import MotoServer
from local.sandbox import MonetateSandbox
from local.sqs_poller import FakeLambdaContext, lambda_sqs_record
from tests.functional.post_records.harness import Stack, env, failed, make_stack, purchase


@pytest.fixture
def stack(moto: MotoServer, sandbox: MonetateSandbox, secret_text: str) -> Stack:
    return make_stack(moto, sandbox, secret_text, env_vars={"SYNC_MODE": "changes"})


def ledger(stack: Stack) -> list[dict[str, Any]]:
    table = stack.settings.sync.ledger_table
    items: list[dict[str, Any]] = stack.moto.client("dynamodb").scan(TableName=table)["Items"]
    return items


def test_a_feed_resending_the_same_state_posts_it_once_and_the_ledger_holds_no_clear_value(
    stack: Stack,
) -> None:
    # Given two purchases posted by a real-time message
    event = stack.event(env(purchase("order-7781", price=1000), purchase("order-7782")))
    first = stack.handler(event, FakeLambdaContext())
    posts = stack.posts()
    # When the feed sends the same state again, spelled differently ("1e3" for 1000)
    again, _ = stack.invoke(env(purchase("order-7781", price="1e3"), purchase("order-7782")))
    # Then the second message posts nothing and succeeds
    assert failed(first) == [] and failed(again) == []
    assert stack.posts() == posts == 1
    assert [r["purchase_id"] for r in stack.sandbox.rows("purchases")] == ["order-7781", "order-7782"]
    # And the ledger holds one hashed entry per purchase, dated by the first message's sent time
    items = ledger(stack)
    record = event["Records"][0]
    assert len(items) == 2
    assert {i["so"]["S"] for i in items} == {record["messageId"]}
    assert {i["st"]["N"] for i in items} == {str(int(record["attributes"]["SentTimestamp"]) / 1000)}
    assert "order-778" not in str(items) and "purchase_id" not in str(items)


def test_a_parked_row_from_an_older_file_is_not_posted_over_newer_data(stack: Stack) -> None:
    # Given p1 posted by a real-time message just now
    first, _ = stack.invoke(env(purchase("p1", price=5)))
    # When IngestFile's parked envelope of an older file brings p1 (older price) and p9
    source = {"bucket": "b", "key": "incoming/purchases/d.csv", "etag": "e1", "size": 9, "lines": [2, 3]}
    body = build_envelope(
        "purchases", [purchase("p1", price=4), purchase("p9")], {**source, "time": 1_700_000_000}
    )
    attributes = {"origin": {"DataType": "String", "StringValue": "ingest_file"}}
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body, MessageAttributes=attributes)
    msg = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"][0]
    response = stack.handler(
        {"Records": [lambda_sqs_record(msg, stack.queue_arn, "us-east-1")]}, FakeLambdaContext()
    )
    # Then only p9 is posted; p1 keeps its newer price, and p9's entry carries the file's source
    assert failed(first) == [] and failed(response) == []
    assert {r["purchase_id"]: r["price"] for r in stack.sandbox.rows("purchases")} == {"p1": 5, "p9": 9.5}
    from_file = [(i["st"]["N"], i["sl"]["N"]) for i in ledger(stack) if i["so"]["S"] == "e1"]
    assert from_file == [("1700000000", "3")]
