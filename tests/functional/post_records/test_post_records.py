"""PostRecords' handler in-process against moto (SQS, DynamoDB, Secrets Manager) and the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from monetate_ingest.delivery.envelope import parse_envelope
from monetate_ingest.ingest.parking import park_rows
from monetate_ingest.ingest.s3_layout import FileRef
from monetate_ingest.records.handler import make_handler

from local.aws import MotoServer, forget_powertools_clients, patched_environ, provision
from local.sandbox import MonetateSandbox
from local.sqs_poller import FakeLambdaContext, lambda_sqs_record
from tests.functional.post_records.harness import (
    PURCHASES,
    USERNAME,
    Stack,
    _prefixes,
    env,
    failed,
    make_stack,
    purchase,
)


@pytest.fixture
def stack(moto: MotoServer, sandbox: MonetateSandbox, secret_text: str) -> Stack:
    return make_stack(moto, sandbox, secret_text)


# --- posted, merged, mapped back ----------------------------------------------------------------


def test_one_row_messages_are_merged_into_few_posts_and_stored(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given at most 4 rows per POST and 10 one-row messages
    stack = make_stack(moto, sandbox, secret_text, max_rows=4)
    bodies = [env(purchase(f"p{i}")) for i in range(10)]
    # When one batch is handled
    response, _ = stack.invoke(*bodies)
    # Then every message succeeds, with ceil(10/4) = 3 POSTs in the sandbox's log, rows in order
    assert failed(response) == []
    assert stack.posts() == 3
    assert [r["purchase_id"] for r in sandbox.rows("purchases")] == [f"p{i}" for i in range(10)]
    assert stack.dead_letters() == []


def test_a_parked_batch_from_ingest_file_is_posted(stack: Stack) -> None:
    # Given rows IngestFile parked on the records queue (its own parking code and envelope)
    ref = FileRef(
        bucket="b", key="incoming/purchases/day.csv", etag="e1", size=10, schema="purchases", name="day.csv"
    )
    rows = [purchase("p1", price=1.0), purchase("p2", price=2)]
    park_rows(stack.sqs, stack.queue_url, ref, rows, [2, 3])
    msg = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"][0]
    assert parse_envelope(msg["Body"]).source == {**ref_source(ref), "lines": [2, 3]}
    # When PostRecords handles it
    response = stack.handler(
        {"Records": [lambda_sqs_record(msg, stack.queue_arn, "us-east-1")]}, FakeLambdaContext()
    )
    # Then the rows are stored
    assert failed(response) == []
    assert [r["purchase_id"] for r in stack.sandbox.rows("purchases")] == ["p1", "p2"]


def ref_source(ref: FileRef) -> dict[str, Any]:
    source: dict[str, Any] = ref.source()
    return source


# --- the outcome matrix against the real things -----------------------------------------------------


def test_mixed_batch_outcomes_and_readable_dead_letters(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given a schema cache that knows a field Monetate does not (so Monetate's 400 must be bisected)
    def stale(client: Any) -> Callable[[str], Any]:
        def fetch(name: str) -> Any:
            schema = client.get_schema(name)
            data = schema.get("data", schema)
            data["fields"]["coupon"] = {"data_type": "STRING"}
            return data

        return fetch

    stack = make_stack(moto, sandbox, secret_text, schema_fetch=stale)
    bodies = {
        "good": env(purchase("p1")),
        "not_json": "{this is not json",
        "not_envelope": '{"schema": "purchases", "records": []}',
        "unknown": env({"customer_id": "c"}, schema="ghosts"),
        "all_invalid": env(purchase("p2", price="twelve")),
        "refused": env(purchase("p3", coupon="SAVE10")),
        "partial": env(purchase("p4"), purchase("p5", price="?"), purchase("p6", coupon="X")),
    }
    # When they are handled in one batch
    response, ids = stack.invoke(*bodies.values())
    by_name = dict(zip(bodies, ids, strict=True))
    # Then nothing is retried (all outcomes are final) and only the valid rows are stored
    assert failed(response) == []
    assert sorted(r["purchase_id"] for r in sandbox.rows("purchases")) == ["p1", "p4"]
    # And each dead letter keeps the original body byte for byte, with the reason as attributes
    letters = {m["MessageAttributes"]["original_message_id"]["StringValue"]: m for m in stack.dead_letters()}
    name_of = {v: k for k, v in by_name.items()}
    got = {name_of[mid]: m["MessageAttributes"]["error_type"]["StringValue"] for mid, m in letters.items()}
    assert got == {
        "not_json": "invalid_json",
        "not_envelope": "not_an_envelope",
        "unknown": "unknown_schema",
        "all_invalid": "rows_rejected",
        "refused": "rows_rejected",
        "partial": "rows_rejected",
    }
    for name in ("not_json", "not_envelope", "unknown", "all_invalid", "refused"):
        assert letters[by_name[name]]["Body"] == bodies[name]
    partial = letters[by_name["partial"]]
    assert parse_envelope(partial["Body"]).rows == [purchase("p5", price="?"), purchase("p6", coupon="X")]
    reason = partial["MessageAttributes"]["error_message"]["StringValue"]
    assert "rows[1] field 'price'" in reason and "rows[2]: Monetate refused the row" in reason
    assert "coupon" in reason
    assert "ghosts" in letters[by_name["unknown"]]["MessageAttributes"]["error_message"]["StringValue"]


@pytest.mark.parametrize("fault", ["error_rate", "rate_429"])
def test_transient_failures_after_retries_are_reported_for_retry(stack: Stack, fault: str) -> None:
    # Given Monetate answering every data POST with 5xx (or 429) and a client that retries once
    stack.handler(*_warm(stack))  # token minted and schema cached before the faults start
    setattr(stack.sandbox.faults, fault, 1.0)
    stack.sandbox.faults.apply_to = "post"
    # When a batch is handled
    response, ids = stack.invoke(env(purchase("p1")), env(purchase("p2")))
    # Then both messages are in batchItemFailures and nothing is dead-lettered
    assert sorted(failed(response)) == sorted(ids)
    assert stack.dead_letters() == []
    # And once Monetate recovers, the redelivered messages are posted (their claims were released)
    setattr(stack.sandbox.faults, fault, 0.0)
    response, _ = stack.invoke(env(purchase("p1")), env(purchase("p2")))
    assert failed(response) == []
    assert {r["purchase_id"] for r in stack.sandbox.rows("purchases")} >= {"p1", "p2"}


def _warm(stack: Stack) -> tuple[dict[str, Any], Any]:
    return stack.event(env(purchase("warm"))), FakeLambdaContext()


def test_key_revoked_fails_the_whole_batch_and_emits_the_metric(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a revoked key
    stack.sandbox.revoke_key(USERNAME)
    # When a batch with a good and a poison message is handled
    response, ids = stack.invoke(env(purchase("p1")), "not json")
    # Then every message fails, nothing is dead-lettered, nothing stored
    assert sorted(failed(response)) == sorted(ids)
    assert stack.dead_letters() == []
    assert stack.posts() == 0
    # And the KeyRevoked metric is in the EMF output
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(doc.get("KeyRevoked") == [1.0] or doc.get("KeyRevoked") == 1.0 for doc in emitted)


# --- idempotency --------------------------------------------------------------------------------


def test_the_same_content_redelivered_under_a_new_message_id_is_not_posted_again(stack: Stack) -> None:
    # Given a message that was posted
    body = env(purchase("p1"), purchase("p2"))
    first, _ = stack.invoke(body)
    posts = stack.posts()
    # When the same body arrives again as another message
    again, _ = stack.invoke(body)
    # Then it succeeds without a new POST
    assert failed(first) == [] and failed(again) == []
    assert stack.posts() == posts == 1
    item = stack.moto.client("dynamodb").scan(TableName=stack.settings.idempotency_table)["Items"]
    assert [i["status"]["S"] for i in item] == ["COMPLETED"]
    assert item[0]["id"]["S"].startswith("post_records#") and "expiration" in item[0]


# --- 401 re-mint ----------------------------------------------------------------------------------


def test_tokens_expiring_before_the_batch_are_reminted_once(stack: Stack) -> None:
    # Given a token minted earlier, then expired by Monetate
    stack.handler(*_warm(stack))
    mints = stack.sandbox.counts["token_mints"]
    stack.sandbox.expire_tokens()
    # When a batch is handled
    response, _ = stack.invoke(env(purchase("p1")), env(purchase("p2")))
    # Then it succeeds with exactly one new token
    assert failed(response) == []
    assert stack.sandbox.counts["token_mints"] == mints + 1


def test_tokens_expiring_between_posts_are_reminted_once_mid_batch(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given one row per POST, and Monetate ending every token right after the first POST
    stack = make_stack(moto, sandbox, secret_text, max_rows=1)
    stack.handler(*_warm(stack))
    real_post = stack.deps.client.post_body
    calls: list[str] = []

    def post_then_expire(schema: str, body: bytes, *, deadline: float | None = None) -> Any:
        result = real_post(schema, body, deadline=deadline)
        calls.append(schema)
        if len(calls) == 1:
            sandbox.expire_tokens()
        return result

    stack.deps.client = _Poster(post_then_expire)
    mints = sandbox.counts["token_mints"]
    # When three messages are handled in one invocation
    response, _ = stack.invoke(env(purchase("p1")), env(purchase("p2")), env(purchase("p3")))
    # Then all are posted, with one re-mint in the middle of the batch
    assert failed(response) == []
    assert sandbox.counts["token_mints"] == mints + 1
    assert {"p1", "p2", "p3"} <= {r["purchase_id"] for r in sandbox.rows("purchases")}


@dataclass
class _Poster:
    post_body: Callable[..., Any]


# --- the default wiring (what app.py uses) -----------------------------------------------------------


def test_the_default_wiring_reads_everything_from_the_environment(
    moto: MotoServer, sandbox: MonetateSandbox, secret_text: str
) -> None:
    # Given the function's environment pointing at moto and the sandbox
    res = provision(
        moto, secret_value=secret_text, prefix=f"pr{next(_prefixes)}", secret_name=f"s{next(_prefixes)}"
    )
    sandbox.add_schema(PURCHASES)
    environ = {**moto.env(), **res.function_env(retailer="acme", api_url=sandbox.url)}
    forget_powertools_clients()  # they stay bound to the endpoint first seen in this process
    with patched_environ(environ):
        from functions.post_records import app

        handler = make_handler()  # what app.lambda_handler is, with a fresh lazy cache
        assert callable(app.lambda_handler)
        sqs = moto.client("sqs")
        sqs.send_message(QueueUrl=res.records_queue_url, MessageBody=env(purchase("p1")))
        msg = sqs.receive_message(QueueUrl=res.records_queue_url, AttributeNames=["All"])["Messages"][0]
        # When a batch is handled
        response = handler(
            {"Records": [lambda_sqs_record(msg, res.records_queue_arn, "us-east-1")]}, FakeLambdaContext()
        )
    forget_powertools_clients()
    # Then the row is stored
    assert response == {"batchItemFailures": []}
    assert [r["purchase_id"] for r in sandbox.rows("purchases")] == ["p1"]


def test_the_sample_event_in_events_is_handled(stack: Stack) -> None:
    # Given the real-shaped sample event (used by `sam local invoke` too)
    with open("events/sqs_records_event.json", encoding="utf-8") as f:
        event = json.load(f)
    # When it is handled
    response = stack.handler(event, FakeLambdaContext())
    # Then both messages are posted: three rows
    assert response == {"batchItemFailures": []}
    assert sorted(r["purchase_id"] for r in stack.sandbox.rows("purchases")) == ["p-1001", "p-2001", "p-2002"]
