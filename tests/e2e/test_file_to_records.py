"""A file dropped in the bucket ends as records in Monetate, with its report and rejects in S3."""

from __future__ import annotations

import json

from local.samples import customers_schema
from local.stack import LocalStack

CUSTOMERS = customers_schema()


def test_file_to_records(stack: LocalStack) -> None:
    # Given a customers schema in Monetate and a CSV with 50 good rows and 2 bad ones
    stack.sandbox.add_schema(CUSTOMERS)
    good = [
        f'e2e-{i}, e2e{i}@x.com ,{i},{"yes" if i % 2 else "no"},2024-05-01 10:00,"gold, vip"'
        for i in range(50)
    ]
    body = (
        "\n".join(
            ["customer_id,email,points,vip,signup,tags", *good, "e2e-bad,x,12.5.1,true,,", ",y,1,true,,"]
        )
        + "\n"
    )
    key = "incoming/customers/2026-11-28 customers+ü.csv"
    # When the retailer drops it and S3's notification reaches IngestFile
    stack.put_file(key, body.encode())
    results = stack.deliver_s3_events()
    # Then the rows are in Monetate, typed and trimmed
    assert [f["status"] for r in results for f in r["files"]] == ["complete"]
    rows = {r["customer_id"]: r for r in stack.sandbox.rows("customers")}
    assert len(rows) == 50
    assert rows["e2e-3"] == {
        "customer_id": "e2e-3",
        "email": "e2e3@x.com",
        "points": 3,
        "vip": True,
        "signup": "2024-05-01T10:00:00Z",
        "tags": "gold,vip",
    }
    # And the report and rejects are in S3 next to it, counts adding up
    report = stack.read_json("reports/customers/2026-11-28 customers+ü.csv.report.json")
    assert report["status"] == "complete"
    assert report["source"]["key"] == key
    assert report["counts"] == {"read": 52, "posted": 50, "rejected": 2, "parked": 0, "unchanged": 0}
    rejects = stack.read_lines("rejects/customers/2026-11-28 customers+ü.csv.rejects.jsonl")
    assert [(r["line"], r.get("field")) for r in rejects] == [(52, "points"), (53, "customer_id")]
    # And a completion event reached the completions queue
    msgs = stack.sqs.receive_message(
        QueueUrl=stack.resources.extra["completions_queue_url"], MaxNumberOfMessages=10
    ).get("Messages", [])
    details = [json.loads(m["Body"])["detail"] for m in msgs]
    assert any(d["source"]["key"] == key and d["status"] == "complete" for d in details)
