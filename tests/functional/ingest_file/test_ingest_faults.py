"""The fault matrix: every AWS and Monetate call IngestFile makes failing in turn.

Each case ends with a report (``failed``, counts balanced, an error naming what failed and where),
or — when S3 itself cannot take the report — a logged report and a raise; then, the fault gone,
a replay of the same event finishes the file with every row stored exactly once (``visits`` has
no unique key: a row posted twice would be stored twice). AWS faults come from
:class:`~tests.functional.ingest_file.aws_faults.FailingClient` around the moto clients, Monetate
faults from the sandbox's fault injection, or a client fake where the sandbox has no such answer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from monetate_ingest.ingest.checkpoints import DynamoCheckpointStore
from monetate_ingest.ingest.completion_events import EventBridgePublisher
from monetate_ingest.ingest.continuation import LambdaContinuer
from monetate_ingest.ingest.s3_layout import MAX_KEY_BYTES, FileRef, route
from monetate_ingest.monetate.exceptions import PermanentApiError

from local.aws import patched_environ
from local.sandbox import FaultConfig
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.aws_faults import FailingClient, LoopbackLambda
from tests.functional.ingest_file.harness import Harness, report_key, visits_csv

harness = conftest_ingest.harness
clean = conftest_ingest.clean

#: Small batches, one at a time, a checkpoint after every unit, fast client retries.
ENV = {"BATCH_MAX_ROWS": "5", "POST_CONCURRENCY": "1", "HTTP_MAX_RETRIES": "1"}


def runtime(h: Harness, **env: str) -> Any:
    """A fresh real runtime under ``ENV`` + ``env``, continuations looped back into the stack."""
    from monetate_ingest.ingest.handler import default_runtime

    with patched_environ({**ENV, **env}):
        rt = default_runtime()
    rt.continuer_for = lambda context: h.stack.continuations.append
    rt.deps = dataclasses.replace(rt.deps, checkpoint_interval=0.0)
    return rt


def replay(h: Harness, key: str, **env: str) -> dict[str, Any]:
    """Run the key's first S3 event again (as from the IngestFailures queue), faults gone."""
    event = next(
        i["event"]
        for i in h.stack.invocations
        if "Records" in i["event"] and unquote_plus(i["event"]["Records"][0]["s3"]["object"]["key"]) == key
    )
    result = h.handler(runtime(h, **env))(event, h.stack.context())
    while h.stack.continuations:
        result = h.handler(runtime(h, **env))(h.stack.continuations.popleft(), h.stack.context())
    return dict(result)


def failed(h: Harness, key: str, code: str) -> dict[str, Any]:
    """The file's report: failed with ``code`` first (counts balanced: ``h.report`` checks)."""
    report = h.report(key)
    assert report["status"] == "failed", report
    assert report["errors"][0]["code"] == code, report["errors"]
    return report


def stored_once(h: Harness, visitor: str, n: int) -> None:
    seqs = sorted(int(r["seq"]) for r in h.stored("visits", visitor, field="visitor_id"))
    assert seqs == list(range(n)), f"{len(seqs)} rows stored for {n}"


def complete_after_replay(h: Harness, key: str, visitor: str, n: int, **env: str) -> dict[str, Any]:
    result = replay(h, key, **env)
    assert result["files"][0]["status"] == "complete", result
    report = h.report(key)
    assert report["status"] == "complete"
    assert report["counts"]["posted"] == n
    stored_once(h, visitor, n)
    return report


# -- S3 -----------------------------------------------------------------------------------------


def test_the_source_object_cannot_be_read(clean: Harness) -> None:
    # Given S3 failing every GET of the file's object
    key = "incoming/visits/faults/s3-get.csv"
    rt = runtime(clean)
    s3 = FailingClient(rt.deps.s3, "get_object", when=lambda kw: kw.get("Key") == key)
    rt.deps = dataclasses.replace(rt.deps, s3=s3)
    # When the file lands
    (result,) = clean.drop(key, visits_csv(12, visitor="s3get"), handler=clean.handler(rt))
    # Then the invocation raised (Lambda retries), and the report names the object and the cause
    assert result["error"] == "SourceReadError"
    report = failed(clean, key, "source_unreadable")
    assert report["errors"][0]["key"] == key
    assert "InternalError" in report["errors"][0]["message"]
    assert report["counts"]["read"] == 0 and not clean.data_posts("visits")
    # … and once S3 answers, the replay ingests the file
    complete_after_replay(clean, key, "s3get", 12)


def test_the_report_cannot_be_written(clean: Harness, caplog: pytest.LogCaptureFixture) -> None:
    # Given S3 refusing every PUT of the report
    key = "incoming/visits/faults/report-put.csv"
    rt = runtime(clean)
    s3 = FailingClient(
        rt.deps.s3, "put_object", code="AccessDenied", when=lambda kw: kw["Key"] == report_key(key)
    )
    rt.deps = dataclasses.replace(rt.deps, s3=s3)
    # When the file lands
    (result,) = clean.drop(key, visits_csv(12, visitor="rput"), handler=clean.handler(rt))
    # Then every row was posted once, the invocation raised, no report is in S3 …
    assert result["error"] == "OutputWriteError"
    assert not clean.exists(report_key(key))
    stored_once(clean, "rput", 12)
    # … and the report is in the log instead, with its counts
    caplog.set_level(logging.ERROR)
    logged = [r for r in caplog.records if r.getMessage().startswith("could not write the report")]
    assert logged and getattr(logged[0], "report")["counts"]["posted"] == 12  # noqa: B009
    assert "AccessDenied" in getattr(logged[0], "error")  # noqa: B009
    # … and the replay writes the report without posting anything again (the checkpoint was saved first)
    posts = len(clean.data_posts("visits"))
    complete_after_replay(clean, key, "rput", 12)
    assert len(clean.data_posts("visits")) == posts


def test_the_rejects_cannot_be_written(clean: Harness) -> None:
    # Given a file with one bad row, and S3 failing every write under rejects/
    key = "incoming/visits/faults/rejects-put.csv"
    rt = runtime(clean)
    rejects = lambda kw: str(kw.get("Key", "")).startswith("rejects/")  # noqa: E731
    s3 = FailingClient(rt.deps.s3, "put_object", when=rejects)
    rt.deps = dataclasses.replace(rt.deps, s3=s3)
    body = visits_csv(10, visitor="rj") + "rj,notanumber,/x\n"
    # When the file lands
    (result,) = clean.drop(key, body, handler=clean.handler(rt))
    # Then the report says the rejects could not be written, and where, with the bad row counted
    assert result["error"] == "OutputWriteError"
    report = failed(clean, key, "output_unwritable")
    assert report["errors"][0]["key"].startswith("rejects/")
    assert report["counts"] == {"read": 11, "posted": 10, "rejected": 1, "parked": 0, "unchanged": 0}
    # … and the replay writes the reject kept in the checkpoint, once, and posts nothing again
    report = complete_after_replay(clean, key, "rj", 10)
    assert report["counts"]["rejected"] == 1
    (reject,) = clean.rejects(key)
    assert reject["line"] == 12


# -- SQS ------------------------------------------------------------------------------------------


def _monetate_fails_after(h: Harness, rt: Any, posts: int) -> None:
    """Switch the sandbox's 500s on for data POSTs after ``posts`` successful ones."""

    class FailAfter:
        def __init__(self, client: Any) -> None:
            self._client, self._left = client, posts

        def post_body(self, schema: str, body: bytes, **kw: Any) -> Any:
            if self._left == 0:
                h.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
            self._left -= 1
            return self._client.post_body(schema, body, **kw)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

    rt.deps = dataclasses.replace(rt.deps, client=FailAfter(rt.deps.client))


def test_the_records_queue_does_not_exist_while_monetate_fails(clean: Harness) -> None:
    # Given RECORDS_QUEUE_URL naming no queue, and Monetate failing after 2 batches
    key = "incoming/visits/faults/no-queue.csv"
    missing = clean.stack.resources.records_queue_url + "-missing"
    rt = runtime(clean, RECORDS_QUEUE_URL=missing)
    _monetate_fails_after(clean, rt, 2)
    # When the file lands (and Lambda retries it twice)
    (result,) = clean.drop(key, visits_csv(30, visitor="nq"), handler=clean.handler(rt))
    # Then the report is failed, names the queue, and counts the 10 rows posted
    assert result["error"] == "ParkingError"
    report = failed(clean, key, "records_queue_unavailable")
    assert report["errors"][0]["queue"] == missing
    assert "queue does not exist" in report["errors"][0]["message"]
    assert "RECORDS_QUEUE_URL" in report["errors"][0]["message"]
    assert report["counts"] == {"read": 10, "posted": 10, "rejected": 0, "parked": 0, "unchanged": 0}
    assert len(clean.data_posts("visits")) == 2 + (1 + 2) * 2  # 2 stored, 3 attempts, each a try and a retry
    # … and once Monetate is back, the replay posts only the 20 rows left
    clean.sandbox.faults = FaultConfig()
    before = len(clean.data_posts("visits"))
    complete_after_replay(clean, key, "nq", 30)
    assert len(clean.data_posts("visits")) - before == 4


def test_sending_to_the_records_queue_fails(clean: Harness) -> None:
    # Given Monetate failing every POST, and SQS failing every send
    key = "incoming/visits/faults/sqs-send.csv"
    rt = runtime(clean)
    rt.deps = dataclasses.replace(
        rt.deps, sqs=FailingClient(rt.deps.sqs, "send_message", code="ServiceUnavailable")
    )
    clean.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
    # When the file lands
    (result,) = clean.drop(key, visits_csv(8, visitor="sq"), handler=clean.handler(rt))
    # Then the report is failed, naming the queue and SQS's answer; nothing is counted as posted
    assert result["error"] == "ParkingError"
    report = failed(clean, key, "records_queue_unavailable")
    assert report["errors"][0]["queue"] == clean.stack.resources.records_queue_url
    assert "ServiceUnavailable" in report["errors"][0]["message"]
    assert report["counts"]["read"] == 0
    # … and the replay, both back, stores every row once
    clean.sandbox.faults = FaultConfig()
    complete_after_replay(clean, key, "sq", 8)


# -- DynamoDB ---------------------------------------------------------------------------------------


def _checkpoints(rt: Any, operation: str, **kw: Any) -> FailingClient:
    table = str(rt.settings.idempotency_table)
    client = FailingClient(boto3.client("dynamodb"), operation, **kw)
    rt.deps = dataclasses.replace(rt.deps, checkpoints=DynamoCheckpointStore(table, client))
    return client


def test_the_checkpoint_table_fails_mid_file(clean: Harness) -> None:
    # Given the checkpoint table failing every write after the first
    key = "incoming/visits/faults/ddb-put.csv"
    rt = runtime(clean)
    _checkpoints(rt, "put_item", code="ProvisionedThroughputExceededException", after=1)
    # When a 30-row file lands (6 batches)
    (result,) = clean.drop(key, visits_csv(30, visitor="dp"), handler=clean.handler(rt))
    # Then the report is failed naming the table; what was posted is counted and balanced
    assert result["error"] == "StateStoreError"
    report = failed(clean, key, "state_unavailable")
    assert report["errors"][0]["table"] == rt.settings.idempotency_table
    assert "ProvisionedThroughputExceededException" in report["errors"][0]["message"]
    assert report["counts"]["posted"] == report["counts"]["read"] > 0
    # … and the replay resumes from the checkpoint backed up in S3: no row posted twice
    complete_after_replay(clean, key, "dp", 30)


def test_the_checkpoint_cannot_be_read(clean: Harness) -> None:
    # Given the checkpoint table failing every read
    key = "incoming/visits/faults/ddb-get.csv"
    rt = runtime(clean)
    _checkpoints(rt, "get_item", code="InternalServerError")
    # When the file lands
    (result,) = clean.drop(key, visits_csv(7, visitor="dg"), handler=clean.handler(rt))
    # Then nothing was posted and the report says why
    assert result["error"] == "StateStoreError"
    report = failed(clean, key, "state_unavailable")
    assert "InternalServerError" in report["errors"][0]["message"]
    assert not clean.data_posts("visits") and report["counts"]["read"] == 0
    complete_after_replay(clean, key, "dg", 7)


def test_the_idempotency_table_is_missing(clean: Harness) -> None:
    # Given an idempotency table that does not exist
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    key = "incoming/visits/faults/no-table.csv"
    rt = runtime(clean)
    rt.idempotency = DynamoDBPersistenceLayer(
        table_name="no-such-table", boto3_client=boto3.client("dynamodb")
    )
    # When the file lands
    (result,) = clean.drop(key, visits_csv(6, visitor="nt"), handler=clean.handler(rt))
    # Then the invocation raised before any POST, and the report names the setting to check
    assert result["error"] == "StateStoreError"
    report = failed(clean, key, "state_unavailable")
    assert "IDEMPOTENCY_TABLE" in report["errors"][0]["message"]
    assert not clean.data_posts("visits")
    complete_after_replay(clean, key, "nt", 6)


def test_the_idempotency_record_cannot_be_completed(clean: Harness) -> None:
    # Given the idempotency table failing the update that marks the file done
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    key = "incoming/visits/faults/idem-update.csv"
    rt = runtime(clean)
    client = FailingClient(boto3.client("dynamodb"), "update_item", code="InternalServerError")
    rt.idempotency = DynamoDBPersistenceLayer(
        table_name=str(rt.settings.idempotency_table), boto3_client=client
    )
    # When the file lands
    clean.drop(key, visits_csv(6, visitor="iu"), handler=clean.handler(rt))
    # Then the first invocation raised naming the table, after the file was finished and reported
    first = next(i["result"] for i in clean.stack.invocations if "idem-update" in json.dumps(i["event"]))
    assert first["error"] == "StateStoreError" and "IDEMPOTENCY_TABLE" in first["message"]
    assert clean.report(key)["status"] == "complete"
    # … and neither Lambda's retries nor a replay post a row again (the record still says in
    # progress, so they are answered as duplicates; the report stays complete)
    (again,) = replay(clean, key)["files"]
    assert again == {"key": key, "duplicate": True}, again
    stored_once(clean, "iu", 6)
    assert len(clean.data_posts("visits")) == 2
    assert clean.report(key)["status"] == "complete"


# -- EventBridge and Lambda --------------------------------------------------------------------------


def test_the_completion_event_cannot_be_published(clean: Harness) -> None:
    # Given EventBridge failing every put
    key = "incoming/visits/faults/events.csv"
    rt = runtime(clean)
    rt.publish = EventBridgePublisher("default", client=FailingClient(boto3.client("events"), "put_events"))
    # When the file lands
    (result,) = clean.drop(key, visits_csv(6, visitor="ev"), handler=clean.handler(rt))
    # Then the file is complete all the same: the report in S3 is the record (the failure is logged)
    assert result["files"][0]["status"] == "complete"
    assert clean.report(key)["status"] == "complete"
    stored_once(clean, "ev", 6)


def test_the_continuation_cannot_be_invoked(clean: Harness) -> None:
    # Given a file too long for one invocation (3 s timeout, 2 s of it kept for the hand-over,
    # 0.2 s per POST, one at a time) and Lambda refusing the asynchronous invoke that continues it
    clean.stack.function_timeout = 3.0
    clean.sandbox.faults = FaultConfig(latency=0.2, apply_to="post")
    key = "incoming/visits/faults/continue.csv"
    env = {"BATCH_MAX_ROWS": "10", "POST_CONCURRENCY": "1"}
    rt = runtime(clean, **env)
    lam = FailingClient(
        LoopbackLambda(clean.stack.continuations.append), "invoke", code="AccessDeniedException"
    )
    rt.continuer_for = lambda context: LambdaContinuer(
        "arn:aws:lambda:us-east-1:123456789012:function:x", lam
    )
    try:
        # When the file lands
        (result,) = clean.drop(key, visits_csv(300, visitor="ct"), handler=clean.handler(rt))
        # Then the invocation raised, and the report says the file could not be continued
        assert result["error"] == "ContinuationError"
        report = failed(clean, key, "continuation_failed")
        assert "AccessDeniedException" in report["errors"][0]["message"]
        assert 0 < report["counts"]["posted"] < 300
        # … and the replay resumes where the checkpoint is and continues to the end
        lam.on = False
        rt2 = runtime(clean, **env)
        rt2.continuer_for = rt.continuer_for
        event = clean.stack.invocations[0 if len(clean.stack.invocations) == 3 else -3]["event"]
        handler = clean.handler(rt2)
        out = handler(event, clean.stack.context())
        while clean.stack.continuations:
            out = handler(clean.stack.continuations.popleft(), clean.stack.context())
    finally:
        clean.stack.function_timeout = 900.0
    assert out["files"][0]["status"] == "complete", out
    stored_once(clean, "ct", 300)


# -- Monetate -----------------------------------------------------------------------------------------


def test_no_token_can_be_minted_on_a_cold_container(clean: Harness) -> None:
    # Given a container without a token (its own settings: a client of its own) and Monetate down
    key = "incoming/visits/faults/no-token.csv"
    rt = runtime(clean, MONETATE_TOKEN_TTL="601")
    clean.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="all")
    # When the file lands
    (result,) = clean.drop(key, visits_csv(9, visitor="tk"), handler=clean.handler(rt))
    # Then the file failed saying Monetate is unavailable (Lambda retries it), nothing posted
    assert "error" in result
    report = failed(clean, key, "monetate_unavailable")
    assert "replay" in report["errors"][0]["message"]
    assert report["counts"]["read"] == 0
    clean.sandbox.faults = FaultConfig()
    complete_after_replay(clean, key, "tk", 9, MONETATE_TOKEN_TTL="601")


def test_the_schema_read_times_out(clean: Harness) -> None:
    # Given Monetate answering the Data API after 0.5 s and a 0.2 s read timeout
    key = "incoming/visits/faults/schema-timeout.csv"
    env = {"HTTP_READ_TIMEOUT": "0.2", "MONETATE_TOKEN_TTL": "602", "HTTP_MAX_RETRIES": "0"}
    rt = runtime(clean, **env)
    clean.sandbox.faults = FaultConfig(latency=0.5, apply_to="data")
    # When the file lands
    (result,) = clean.drop(key, visits_csv(5, visitor="to"), handler=clean.handler(rt))
    # Then the report says Monetate was unavailable, and on which call
    assert "error" in result
    report = failed(clean, key, "monetate_unavailable")
    assert "schema" in report["errors"][0].get("call", "") + report["errors"][0]["message"]
    clean.sandbox.faults = FaultConfig()
    complete_after_replay(clean, key, "to", 5)


def test_the_schema_does_not_exist(clean: Harness) -> None:
    # Given a file for a dataset Monetate does not have
    key = "incoming/nosuchset/f.csv"
    # When it lands
    (result,) = clean.drop(key, visits_csv(3, visitor="ns"), handler=clean.handler(runtime(clean)))
    # Then the file failed with unknown_schema, and the invocation returned (a retry cannot help)
    assert result["files"][0]["status"] == "failed"
    failed(clean, key, "unknown_schema")


class _Refusing:
    """A Monetate client fake whose ``method`` answers as the transport does for an unexpected 4xx."""

    def __init__(self, client: Any, method: str, status: int, verb: str, path: str) -> None:
        self._client, self._method = client, method
        self._error = PermanentApiError(
            f"Monetate answered {status} to {verb} {path}", status=status, url=f"https://api.example{path}"
        )
        self.on = True

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != self._method:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.on:
                raise self._error
            return attr(*args, **kwargs)

        return call


@pytest.mark.parametrize(
    ("method", "status", "verb", "env", "extra"),
    [
        ("post_body", 413, "POST", {}, ""),
        ("add_fields", 405, "PATCH", {"UNKNOWN_COLUMNS": "add"}, "extra"),
    ],
)
def test_monetate_refuses_a_call(
    clean: Harness, method: str, status: int, verb: str, env: dict[str, str], extra: str
) -> None:
    # Given Monetate answering {status} to every {verb}
    key = f"incoming/visits/faults/refused-{status}.csv"
    path = f"/api/data/v1/acme/production/{'data' if verb == 'POST' else 'schema'}/visits/"
    rt = runtime(clean, **env)
    rt.deps = dataclasses.replace(rt.deps, client=_Refusing(rt.deps.client, method, status, verb, path))
    body = visits_csv(6, visitor=f"rf{status}")
    if extra:  # a new column, so the schema is PATCHed first
        body = body.replace("visitor_id,seq,page\n", f"visitor_id,seq,page,{extra}\n")
        body = body.replace("\n", ",x\n").replace(f"{extra},x\n", f"{extra}\n", 1)
    # When the file lands
    (result,) = clean.drop(key, body, handler=clean.handler(rt))
    # Then the report is failed with the status, the call, and what to do about it
    assert result["error"] == "PermanentApiError"
    report = failed(clean, key, "monetate_refused")
    error = report["errors"][0]
    assert error["status"] == status and error["call"] == path
    assert str(status) in error["message"]
    assert report["counts"]["posted"] == 0


# -- events and names -------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [".", ".."])
def test_a_dot_segment_is_refused_before_any_call(clean: Harness, schema: str) -> None:
    # Given a file whose schema folder is a dot segment
    key = f"incoming/{schema}/f.csv"
    # When it lands
    (result,) = clean.drop(key, visits_csv(3, visitor="dot"), handler=clean.handler(runtime(clean)))
    # Then no Monetate request was made, and the report says the name is invalid
    assert result["files"][0]["status"] == "failed"
    report = failed(clean, key, "invalid_schema")
    assert "dot segment" in report["errors"][0]["message"]
    assert clean.sandbox.requests == []


@pytest.mark.parametrize(
    "event",
    [
        None,
        "text",
        [],
        {},
        {"Records": "x"},
        {"Event": "s3:TestEvent"},
        {"detail-type": "Object Created", "detail": {}},
        {"Records": [None, {"eventSource": "aws:sqs"}]},
        {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]},
        {
            "Records": [
                {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"object": {"key": 5}}}
            ]
        },
        {"continuation": {"file": {"bucket": "b"}}},
    ],
)
def test_a_non_s3_or_garbage_event_ends_cleanly(
    clean: Harness, event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an event that is not an S3 ObjectCreated notification (or is malformed)
    handler = clean.handler(runtime(clean))
    # When IngestFile is invoked with it
    result = handler(event, clean.stack.context())
    # Then it returns without processing anything, and the log says what was wrong
    files = result.get("files", [])
    assert all("ignored" in f for f in files), result
    assert "ignored" in result or files
    assert any("ignored" in r.getMessage() for r in caplog.records)
    assert clean.sandbox.requests == []


# -- bounded output ------------------------------------------------------------------------------------


def test_a_ten_thousand_column_file_gets_a_small_report(clean: Harness) -> None:
    # Given a file with 10,000 columns the schema does not have
    key = "incoming/visits/faults/wide.csv"
    extra = [f"col_{i:05d}" for i in range(10_000)]
    body = "visitor_id,seq,page," + ",".join(extra) + "\n" + "w,1,/p," + ",".join("x" * 10_000) + "\n"
    # When it lands
    clean.drop(key, body, handler=clean.handler(runtime(clean)))
    # Then the report says which columns (the first 50, and how many more), in a few KB
    report = failed(clean, key, "unknown_columns")
    error = report["errors"][0]
    assert error["columns"] == extra[:50] and error["columns_omitted"] == 10_000 - 50
    assert len(error["message"]) <= 2_000 and "characters left out" in error["message"]
    size = len(clean.stack.s3.get_object(Bucket=clean.bucket, Key=report_key(key))["Body"].read())
    assert size < 10_000, size


def test_a_long_key_gets_a_shortened_report_key(clean: Harness) -> None:
    # Given a file whose key is almost S3's 1,024 bytes (its report key would be longer)
    key = "incoming/visits/" + "d" * 1000 + ".csv"  # 1,020 bytes
    # When it lands
    clean.drop(key, visits_csv(4, visitor="lk"), handler=clean.handler(runtime(clean)))
    # Then its report is at a key within the limit, ending in a hash of the name
    ref = route(clean.bucket, key, "etag", 0)
    assert isinstance(ref, FileRef)
    assert len(ref.report_key.encode()) <= MAX_KEY_BYTES and "~" in ref.report_key
    report = clean.stack.read_json(ref.report_key)
    assert report["status"] == "complete" and report["source"]["key"] == key
    stored_once(clean, "lk", 4)


def _sample(name: str) -> dict[str, Any]:
    with open(f"events/{name}", encoding="utf-8") as f:
        return dict(json.load(f))


def test_the_sample_events_that_ingest_nothing_end_cleanly(clean: Harness) -> None:
    # Given IngestFile and the real-shaped sample events of events/
    handler = clean.handler(runtime(clean))
    context = clean.stack.context()
    # When S3's test event (sent when notifications are set up) arrives, then it is ignored, saying so
    assert "s3:TestEvent" in handler(_sample("s3_test_event.json"), context)["ignored"]
    # When an ObjectRemoved record arrives, then that record is ignored, saying which event it was
    (removed,) = handler(_sample("s3_object_removed.json"), context)["files"]
    assert "ObjectRemoved:Delete" in removed["ignored"]
    # When a continuation names an object that is gone, then the file fails without a retry
    (gone,) = handler(_sample("ingest_continuation.json"), context)["files"]
    assert gone["status"] == "failed"
    assert failed(clean, "incoming/customers/2026-11-28 customers+ü.csv", "object_missing")
    # When a record's schema folder is an encoded dot segment, then it is refused before any call
    clean.sandbox.reset()
    (dot,) = handler(_sample("s3_object_created_dot_segment.json"), context)["files"]
    assert dot["status"] == "failed"
    assert failed(clean, "incoming/../customers.csv", "invalid_schema")
    assert clean.sandbox.requests == []
