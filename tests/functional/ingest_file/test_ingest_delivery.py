"""Delivery outcomes: parking, unknown columns and schemas, dry runs, completion events, secrets."""

from __future__ import annotations

import json
import re

import pytest

from local.sandbox.faults import FaultConfig
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import (
    FAST_RETRIES,
    HEADER,
    Harness,
    customers_csv,
    ids,
)

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")


@pytest.mark.parametrize(
    "fault",
    [FaultConfig(error_rate=1.0, apply_to="post"), FaultConfig(rate_429=1.0, apply_to="post")],
    ids=["5xx", "429"],
)
def test_rows_are_parked_when_monetate_keeps_failing(clean: Harness, fault: FaultConfig) -> None:
    # Given Monetate answers every data POST with an error (schema reads and auth still work)
    clean.queue_messages(clean.stack.resources.records_queue_url)
    key = f"incoming/customers/parking/{'429' if fault.rate_429 else '5xx'}.csv"
    body = customers_csv(7, prefix="park-") + "bad,x,notnum,true,,\n"
    clean.sandbox.faults = fault
    # When a file of 7 good rows and 1 bad row lands (2 batches of 4)
    clean.drop(key, body, BATCH_MAX_ROWS="4", **FAST_RETRIES)
    # Then the good rows are parked on the records queue as envelopes carrying their source lines
    report = clean.report(key)
    assert report["status"] == "complete"
    assert report["counts"] == {"read": 8, "posted": 0, "rejected": 1, "parked": 7, "unchanged": 0}
    messages = clean.queue_messages(clean.stack.resources.records_queue_url)
    envelopes = [json.loads(m["Body"]) for m in messages]
    assert {e["schema"] for e in envelopes} == {"customers"}
    parked = [r for e in envelopes for r in e["rows"]]
    assert sorted(ids(parked)) == sorted(f"park-{i}" for i in range(7))
    assert parked[0]["points"] == 0 and parked[1]["vip"] is True  # coerced, ready for PostRecords
    lines = sorted(ln for e in envelopes for ln in e["source"]["lines"])
    assert lines == list(range(2, 9))
    assert all(e["source"]["key"] == key for e in envelopes)
    assert clean.stored("customers", "park-") == []


def test_unknown_columns_reject_fails_the_file_before_any_post(clean: Harness) -> None:
    # Given UNKNOWN_COLUMNS=reject (the default) and a CSV with two columns the schema lacks
    key = "incoming/customers/columns/reject.csv"
    body = HEADER + ",nickname,shoe_size\nu1,a@x.com,1,true,,a,Al,42\n"
    # When it lands
    results = clean.drop(key, body)
    # Then the report fails naming the columns and how to add them, and nothing was posted
    report = clean.report(key)
    assert report["status"] == "failed", results
    (error,) = report["errors"]
    assert error["code"] == "unknown_columns"
    assert error["columns"] == ["nickname", "shoe_size"]
    assert "nickname" in error["message"] and "shoe_size" in error["message"]
    assert "UNKNOWN_COLUMNS" in error["message"] or "add" in error["message"]
    assert clean.data_posts() == []


def test_unknown_columns_ignore_posts_without_them(clean: Harness) -> None:
    # Given UNKNOWN_COLUMNS=ignore and a CSV with an extra column
    key = "incoming/customers/columns/ignore.csv"
    body = HEADER + ",nickname\nig1,a@x.com,1,true,,a,Al\n"
    # When it lands
    clean.drop(key, body, UNKNOWN_COLUMNS="ignore")
    # Then the row is stored without the unknown column
    report = clean.report(key)
    assert report["status"] == "complete" and report["counts"]["posted"] == 1
    (row,) = clean.stored("customers", "ig")
    assert "nickname" not in row and row["email"] == "a@x.com"


def test_unknown_columns_add_patches_the_schema_then_posts(clean: Harness) -> None:
    # Given UNKNOWN_COLUMNS=add and a CSV with a column the schema lacks
    key = "incoming/customers/columns/add.csv"
    body = HEADER + ",loyalty_tier\nad1,a@x.com,1,true,,a, Gold \n"
    assert "loyalty_tier" not in clean.sandbox.schema("customers")["fields"]
    # When it lands
    clean.drop(key, body, UNKNOWN_COLUMNS="add")
    # Then the schema gained a STRING field (PATCH before the POST) and the row carries it
    assert clean.sandbox.schema("customers")["fields"]["loyalty_tier"]["data_type"] == "STRING"
    patches = [r for r in clean.sandbox.requests if r.method == "PATCH"]
    posts = clean.data_posts()
    assert len(patches) == 1 and posts and patches[0].finished <= posts[0].started
    (row,) = clean.stored("customers", "ad")
    assert row["loyalty_tier"] == "Gold"
    assert clean.report(key)["status"] == "complete"


def test_unknown_columns_add_that_monetate_refuses_fails_the_file_with_a_report(clean: Harness) -> None:
    # Given UNKNOWN_COLUMNS=add and a column whose name Monetate refuses (longer than 64 characters)
    key = "incoming/customers/columns/add-refused.csv"
    long_name = "x" * 70
    body = HEADER + f",{long_name}\nar1,a@x.com,1,true,,a,v\n"
    # When it lands
    clean.drop(key, body, UNKNOWN_COLUMNS="add")
    # Then the file fails with a report that says why (nothing is lost silently), and nothing is posted
    report = clean.report(key)
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "unknown_columns"
    assert clean.data_posts() == []


def test_unknown_schema_fails_the_file_with_a_clear_message(clean: Harness) -> None:
    # Given a file under a schema Monetate does not have
    key = "incoming/no_such_schema/file.csv"
    # When it lands
    results = clean.drop(key, "id\n1\n")
    # Then the report is failed with a message naming the schema and what to do; nothing is posted
    report = clean.report(key)
    assert report["status"] == "failed", results
    (error,) = report["errors"]
    assert error["code"] == "unknown_schema"
    assert "no_such_schema" in error["message"] and "create it" in error["message"]
    assert clean.data_posts() == []


def test_dry_run_reports_and_lists_rejects_but_posts_nothing(clean: Harness) -> None:
    # Given a file under dry-run/ with two good rows and one bad one
    key = "dry-run/customers/x.csv"
    body = customers_csv(2, prefix="dry-") + "dry-bad,x,1,maybe,,\n"
    # When it lands
    clean.drop(key, body)
    # Then the report and rejects go under reports/dry-run/… and rejects/dry-run/…, and nothing is posted
    report = clean.stack.read_json("reports/dry-run/customers/x.csv.report.json")
    assert report["dry_run"] is True and report["status"] == "complete"
    assert report["counts"]["read"] == 3 and report["counts"]["rejected"] == 1
    assert report["counts"]["read"] == sum(report["counts"][k] for k in ("posted", "rejected", "parked"))
    (reject,) = clean.stack.read_lines("rejects/dry-run/customers/x.csv.rejects.jsonl")
    assert reject["line"] == 4 and reject["field"] == "vip"
    assert clean.data_posts() == []
    assert clean.stored("customers", "dry-") == []
    assert not clean.stack.s3.list_objects_v2(Bucket=clean.bucket, Prefix="reports/customers/x.csv").get(
        "Contents"
    )


def test_completion_event_reaches_the_completions_queue(clean: Harness) -> None:
    # Given the EventBridge rule that copies completion events to a queue
    url = clean.stack.resources.extra["completions_queue_url"]
    clean.queue_messages(url)
    key = "incoming/customers/events/done.csv"
    # When a file completes
    clean.drop(key, customers_csv(2, prefix="ev-") + ",nobody,1,true,,\n")
    # Then one event for it arrives with the report's counts and locations
    events = [json.loads(m["Body"]) for m in clean.queue_messages(url)]
    mine = [e for e in events if e["detail"]["source"]["key"] == key]
    assert len(mine) == 1
    (event,) = mine
    assert event["source"] == "monetate-ingest"
    assert event["detail-type"] == "File ingest complete"
    assert event["detail"]["counts"] == {"read": 3, "posted": 2, "rejected": 1, "parked": 0, "unchanged": 0}
    assert event["detail"]["report"]["key"] == "reports/customers/events/done.csv.report.json"
    assert event["detail"]["rejects"]["key"] == "rejects/customers/events/done.csv.rejects.jsonl"


def test_logs_of_a_full_run_hold_no_secret(
    clean: Harness, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a fresh runtime (so the secret is read and a token minted during this test, with debug logs)
    caplog.set_level("DEBUG")
    key = "incoming/customers/secrets/run.csv"
    # When a file with a reject runs to completion, token expiry forcing a re-mint on the way
    clean.sandbox.expire_tokens()
    clean.drop(
        key,
        customers_csv(3, prefix="sec-") + "sec-x,a,zz,true,,\n",
        POWERTOOLS_LOG_LEVEL="DEBUG",
        BATCH_MAX_ROWS="2",
    )
    assert clean.report(key)["counts"]["posted"] == 3
    # Then neither the private key, nor any token the sandbox issued, nor a JWT is in the logs
    out, err = capfd.readouterr()
    logs = out + err + caplog.text
    assert "file processed" in logs  # the logs were captured
    pem_lines = [ln for ln in clean.stack.private_pem.splitlines() if ln and not ln.startswith("-----")]
    assert pem_lines and not any(ln in logs for ln in pem_lines)
    assert "PRIVATE KEY" not in logs
    tokens = list(clean.sandbox._api.authority._tokens)  # every token the sandbox minted
    assert tokens and not any(t in logs for t in tokens)
    assert not JWT_RE.search(logs)


def test_a_file_replaced_before_it_is_read_fails_that_event_and_the_new_upload_wins(clean: Harness) -> None:
    # Given a file uploaded and then replaced under the same key before the events are delivered
    key = "incoming/customers/replaced/daily.csv"
    clean.stack.put_file(key, customers_csv(2, prefix="old-").encode())
    clean.stack.put_file(key, customers_csv(3, prefix="new-").encode())
    # When both S3 events are delivered
    results = [f for r in clean.deliver() for f in r.get("files", [])]
    # Then the first event's file fails with a clear reason and nothing of it is posted
    statuses = [f["status"] for f in results if f.get("key") == key]
    assert statuses == ["failed", "complete"]
    assert clean.stored("customers", "old-") == []
    # And the newer upload is loaded, its report the one left in S3
    assert sorted(ids(clean.stored("customers", "new-"))) == ["new-0", "new-1", "new-2"]
    assert clean.report(key)["status"] == "complete"


def test_metrics_per_schema_count_rows_batches_and_post_latency(
    clean: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a file of 7 good rows and 1 bad row in batches of 4
    key = "incoming/customers/metrics/daily.csv"
    body = customers_csv(7, prefix="m-") + "bad,x,notnum,true,,\n"
    capfd.readouterr()
    # When it is ingested
    clean.drop(key, body, BATCH_MAX_ROWS="4")
    # Then one EMF line for the schema carries the rows, the batches and each POST's latency
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    (emf,) = [x for x in lines if x.get("schema") == "customers" and "RowsRead" in x]

    def values(name: str) -> list[float]:
        value = emf[name]
        return value if isinstance(value, list) else [value]

    counts = [values(n) for n in ("RowsRead", "RowsPosted", "RowsRejected", "RowsParked")]
    assert counts == [[8], [7], [1], [0]]
    assert values("BatchesPosted") == [2] and values("FilesCompleted") == [1]
    latencies = values("PostLatency")
    assert len(latencies) == 2 and all(ms > 0 for ms in latencies)
    assert emf["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MonetateIngest"
