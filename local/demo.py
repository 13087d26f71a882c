"""`make demo`: the main job end to end on the embedded local stack, printing what happened.

1. The client path: a fresh key pair, the secret in (local) Secrets Manager, the public key
   registered with the Monetate sandbox, a token minted, a schema created, rows posted, one read back.
2. IngestFile: a CSV with a few bad rows dropped into ``incoming/customers/``; the S3 notification
   runs the real handler; the report and the rejects file are printed.
3. PostRecords: envelopes (good and bad) sent to the records queue; the poller runs the real handler
   like the Lambda event source mapping; each message's fate is printed, DLQ reasons included.
4. ValidateRecord: the spot-check API behind a local API Gateway front; one record checked with the
   API key, and the page's URL.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
from typing import Any

from local.stack import RETAILER, USERNAME, LocalStack

CUSTOMERS = {
    "name": "customers",
    "type": "attribute",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True, "unique_key": True},
        "email": {"data_type": "STRING"},
        "lifetime_value": {"data_type": "NUMBER"},
        "vip": {"data_type": "BOOLEAN"},
        "signup_time": {"data_type": "DATETIME"},
        "segments": {"data_type": "MULTI_STRING"},
    },
}

SAMPLE_CSV = (
    "customer_id,email,lifetime_value,vip,signup_time,segments\n"
    'C1001,ada@example.com,1520.50,yes,2024-05-01 09:30,"gold,newsletter"\n'
    "C1002,  grace@example.com ,87,no,2024-05-02T10:00:00+02:00,silver\n"
    "C1003,linus@example.com,lots,true,2024-05-03,\n"
    ",nobody@example.com,10,false,2024-05-04,\n"
    'C1005,"margaret@example.com",42,maybe,2024-05-05,bronze\n'
    'C1006,ken@example.com,0,1,2024-05-06T00:00:00Z,"gold,vip"\n'
)


def step(title: str) -> None:
    print(f"\n\033[1m== {title}\033[0m")


def show(label: str, value: Any) -> None:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    print(f"  {label}:")
    print(textwrap.indent(text, "    "))


def client_path(stack: LocalStack) -> None:
    from monetate_ingest.monetate.factory import build_client
    from monetate_ingest.settings import monetate_from_env

    step("1. Secret → JWT → token → Data API (the layer's client)")
    print(f"  Monetate sandbox at {stack.sandbox.url}  (retailer {RETAILER!r})")
    print(f"  moto (local AWS) at {stack.moto.url}")
    print(f"  generated an RSA key pair; public key registered for API user {USERNAME!r}")
    print(f"  secret stored in Secrets Manager as {stack.resources.secret_id}")
    client = build_client(monetate_from_env())
    schema = client.create_schema(CUSTOMERS)
    print(f"  created schema {schema['name']!r} with fields {', '.join(schema['fields'])}")
    print(f"  token minted: {client.tokens.mints} (valid {monetate_from_env().token_ttl} s; never printed)")
    client.post_rows("customers", [{"customer_id": "C0001", "email": "first@example.com", "vip": True}])
    print("  posted 1 row to /data/customers/")
    (record,) = client.get_record("customers", "C0001")  # the sandbox's GET, never the real one
    show("read back C0001 (sandbox single-record GET)", record)
    time.sleep(1.05)  # the single-record GET allows one request per second


def ingest_path(stack: LocalStack) -> None:
    step("2. IngestFile: a CSV dropped into s3://…/incoming/customers/")
    key = "incoming/customers/2026-11-28 nightly customers.csv"
    stack.put_file(key, SAMPLE_CSV.encode())
    print(f"  uploaded {key!r} ({len(SAMPLE_CSV.splitlines()) - 1} rows, a few of them bad)")
    results = stack.deliver_s3_events()
    show("handler result", results)
    report_key = "reports/customers/2026-11-28 nightly customers.csv.report.json"
    report = stack.read_json(report_key)
    counts = report["counts"]
    show(f"report s3://{stack.resources.bucket}/{report_key}", {k: report[k] for k in ("status", "counts")})
    if report.get("rejects_key"):
        print(f"  rejects s3://{stack.resources.bucket}/{report['rejects_key']}:")
        for line in stack.read_lines(report["rejects_key"]):
            print(f"    line {line['line']}: {line['reason']}")
    assert counts["read"] == counts["posted"] + counts["rejected"] + counts["parked"] + counts["unchanged"]
    rows = stack.sandbox.rows("customers")
    print(f"  Monetate now holds {len(rows)} customers rows, e.g.:")
    for row in rows[1:3]:
        print(f"    {json.dumps(row)}")


NEXT_NIGHT_CSV = (  # the same export a night later: re-spelled, columns reordered, one change, one new
    "segments,signup_time,vip,lifetime_value,email,customer_id\n"
    '"gold,newsletter",2024-05-01T09:30:00Z,TRUE,1520.5,ada@example.com,C1001\n'
    "silver,2024-05-02 08:00,false,87.0,grace@example.com,C1002\n"
    '"gold,vip",2024-05-06,true,250,ken@example.com,C1006\n'
    ",2024-05-07,no,5,alan@example.com,C1007\n"
)


def sync_path(stack: LocalStack) -> None:
    step("2b. Change-only sync: the next night's full export posts only what changed")
    key = "incoming/customers/2026-11-29 nightly customers.csv"
    before = stack.sandbox.counts.get("data_posts", 0)
    stack.put_file(key, NEXT_NIGHT_CSV.encode())
    print(f"  uploaded {key!r}: 4 rows, 2 of them as last night but spelled otherwise, 1 changed, 1 new")
    stack.deliver_s3_events()
    report = stack.read_json(f"reports/customers/{key.split('/', 2)[2]}.report.json")
    show("report", {k: report[k] for k in ("status", "counts", "sync")})
    posts = stack.sandbox.counts.get("data_posts", 0) - before
    stored = {r["customer_id"]: r for r in stack.sandbox.rows("customers")}
    print(f"  {posts} POST to Monetate: C1006's lifetime_value is now {stored['C1006']['lifetime_value']},")
    print("  C1007 is new; C1001 and C1002 were not sent again (the ledger holds hashes, no values)")


def post_records_path(stack: LocalStack) -> None:
    from monetate_ingest.delivery.envelope import build_envelope

    from local.sqs_poller import SqsPoller

    step("3. PostRecords: envelopes on the records queue")
    res = stack.resources
    good = build_envelope("customers", [{"customer_id": "C2001", "email": "alan@example.com", "vip": "y"}])
    messages = {
        "good (one row)": good,
        "good (two rows)": build_envelope(
            "customers",
            [
                {"customer_id": "C2002", "lifetime_value": "12.5"},
                {"customer_id": "C2003", "segments": ["a", "b"]},
            ],
        ),
        "same content again (a redelivery)": good,
        "one bad row of two": build_envelope(
            "customers", [{"customer_id": "C2004"}, {"customer_id": "C2005", "signup_time": "yesterday"}]
        ),
        "not JSON": "customer_id=C9,email=x",
        "unknown schema": build_envelope("no_such_dataset", [{"id": "1"}]),
    }
    ids = {}
    for label, body in messages.items():
        ids[stack.sqs.send_message(QueueUrl=res.records_queue_url, MessageBody=body)["MessageId"]] = label
        print(f"  sent: {label}")
    poller = SqsPoller(stack.sqs, res.records_queue_url, stack.post_records_handler(), batch_size=10)
    for result in poller.drain(max_seconds=60):
        for mid in result.deleted:
            print(f"  handled (deleted from the queue): {ids.get(mid, mid)}")
        for mid in result.failed:
            print(f"  left for a retry: {ids.get(mid, mid)}")
    dead = stack.sqs.receive_message(
        QueueUrl=res.records_dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    print(f"  dead-letter queue now holds {len(dead)} message(s):")
    for msg in dead:
        attrs = msg.get("MessageAttributes", {})
        original = attrs.get("original_message_id", {}).get("StringValue", "")
        kind = attrs.get("error_type", {}).get("StringValue")
        reason = attrs.get("error_message", {}).get("StringValue")
        print(f"    [{ids.get(original, original)}] {kind}: {reason}")
    print("  after a fix, send them back with:  python -m monetate_ingest redrive")


def validate_path(stack: LocalStack, *, serve: bool = False) -> None:
    import secrets

    import requests

    from local.api_front import ApiFront

    step("4. ValidateRecord: one spot check through the API (at most one Monetate GET per second)")
    api_key = secrets.token_urlsafe(24)
    time.sleep(1.05)  # the budget is shared with step 1's read-back
    with ApiFront(stack.validate_handler(), api_key) as front:
        url = f"{front.url}records/customers/C1001"
        print(f"  GET {url}   (header x-api-key: <the API key>)")
        answer = requests.get(url, headers={"x-api-key": api_key}, timeout=10)
        show(f"HTTP {answer.status_code}", answer.json())
        anonymous = requests.get(url, timeout=10)
        print(f"  without the key: HTTP {anonymous.status_code} {anonymous.json()}")
        print(f"  the spot-check page: {front.url}  (API key for it: {api_key})")
        if not serve:
            print("  (`make demo DEMO_ARGS=--serve` keeps the page up until Ctrl-C)")
            return
        print("  serving until Ctrl-C …")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


def main() -> int:
    serve = "--serve" in sys.argv[1:]
    started = time.monotonic()
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true", "SYNC_MODE": "changes"}
    with LocalStack(env_overrides=quiet) as stack:
        client_path(stack)
        ingest_path(stack)
        sync_path(stack)
        post_records_path(stack)
        validate_path(stack, serve=serve)
    print(f"\nDemo finished in {time.monotonic() - started:.1f} s. Everything ran on 127.0.0.1.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
