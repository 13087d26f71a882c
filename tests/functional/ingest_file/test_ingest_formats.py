"""IngestFile reads every supported format and routes keys as the S3 layout says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import (
    Harness,
    customers_csv,
    customers_objects,
    gz,
    ids,
)

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean

EVENT_FILE = Path(__file__).resolve().parents[3] / "events" / "s3_object_created.json"


def _jsonl(objs: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(o) + "\n" for o in objs).encode()


def _body(fmt: str, prefix: str) -> tuple[bytes, dict[str, str]]:
    """The three rows ``{prefix}0..2`` in format ``fmt``, and the env that format needs."""
    if fmt == "csv":
        return customers_csv(3, prefix=prefix).encode(), {}
    if fmt == "csv-bom-crlf":
        return b"\xef\xbb\xbf" + customers_csv(3, prefix=prefix, newline="\r\n").encode(), {}
    if fmt == "csv-semicolon":
        text = customers_csv(3, prefix=prefix).replace(",", ";").replace('"a;b"', '"a,b"')
        return text.encode(), {"CSV_DELIMITER": ";"}
    if fmt in ("jsonl", "ndjson"):
        return _jsonl(customers_objects(3, prefix=prefix)), {}
    if fmt == "json":
        return json.dumps(customers_objects(3, prefix=prefix), indent=2).encode(), {}
    raise AssertionError(fmt)


FORMATS = [
    ("csv", ".csv"),
    ("csv-bom-crlf", ".csv"),
    ("csv-semicolon", ".csv"),
    ("jsonl", ".jsonl"),
    ("ndjson", ".ndjson"),
    ("json", ".json"),
]


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gz-suffix"])
@pytest.mark.parametrize(("fmt", "suffix"), FORMATS, ids=[f for f, _ in FORMATS])
def test_every_format_is_ingested(clean: Harness, fmt: str, suffix: str, gzipped: bool) -> None:
    # Given three valid customer rows in this format (gzip'd when the name ends in .gz)
    prefix = f"{fmt}-{'gz' if gzipped else 'plain'}-"
    body, env = _body(fmt, prefix)
    key = f"incoming/customers/formats/{prefix}file{suffix}" + (".gz" if gzipped else "")
    # When the file lands in the bucket
    results = clean.drop(key, gz(body) if gzipped else body, **env)
    # Then every row is stored in Monetate with its types, and the report says complete
    report = clean.report(key)
    assert report["status"] == "complete", (results, report)
    assert report["counts"] == {"read": 3, "posted": 3, "rejected": 0, "parked": 0, "unchanged": 0}
    stored = clean.stored("customers", prefix)
    assert sorted(ids(stored)) == [f"{prefix}{i}" for i in range(3)]
    row = next(r for r in stored if r["customer_id"] == f"{prefix}1")
    assert row["points"] == 1 and row["vip"] is True and row["tags"] == "a,b"
    assert row["signup"].endswith("Z")
    assert not clean.exists(
        f"rejects/customers/formats/{prefix}file{suffix}" + (".gz" if gzipped else "") + ".rejects.jsonl"
    )


def test_gzip_is_detected_by_magic_bytes(clean: Harness) -> None:
    # Given a gzip'd CSV named plainly .csv
    key = "incoming/customers/magic/disguised.csv"
    # When it lands
    clean.drop(key, gz(customers_csv(4, prefix="magic-").encode()))
    # Then it is decompressed and ingested like any CSV
    report = clean.report(key)
    assert report["status"] == "complete"
    assert report["counts"]["posted"] == 4
    assert len(clean.stored("customers", "magic-")) == 4


def test_key_with_spaces_plus_and_unicode(clean: Harness) -> None:
    # Given a file whose key has a space, a '+' and a non-ASCII letter (S3 URL-encodes it in the event)
    key = "incoming/customers/2026-11-28 customers+ü.csv"
    # When it lands and moto's notification reaches the handler
    clean.drop(key, customers_csv(2, prefix="uni-"))
    # Then the key was decoded exactly: report and rows are there under the original name
    report = clean.report(key)
    assert report["source"]["key"] == key
    assert report["status"] == "complete"
    assert len(clean.stored("customers", "uni-")) == 2


def test_sample_event_file_drives_the_handler(clean: Harness) -> None:
    # Given the sample event of events/ (key quote_plus-encoded as AWS sends it) and that object in S3
    event = json.loads(EVENT_FILE.read_text())
    record = event["Records"][0]
    key = "incoming/customers/2026-11-28 customers+ü.csv"
    assert record["s3"]["object"]["key"] != key  # it is encoded
    clean.stack.put_file(key, customers_csv(2, prefix="evt-").encode())
    head = clean.stack.s3.head_object(Bucket=clean.bucket, Key=key)
    record["s3"]["bucket"]["name"] = clean.bucket
    record["s3"]["object"]["eTag"] = head["ETag"].strip('"')
    record["s3"]["object"]["size"] = head["ContentLength"]
    # When the handler is invoked with it directly (as `sam local invoke` would)
    result = clean.handler()(event, clean.stack.context())
    # Then the decoded key is ingested and the answer names its report
    assert result["files"][0]["status"] == "complete", result
    assert result["files"][0]["report"].endswith("reports/customers/2026-11-28 customers+ü.csv.report.json")
    assert len(clean.stored("customers", "evt-")) == 2


def test_keys_outside_incoming_are_ignored(clean: Harness) -> None:
    # Given an event for a key outside incoming/ and one for a folder marker
    event = json.loads(EVENT_FILE.read_text())
    outside = json.loads(json.dumps(event["Records"][0]))
    outside["s3"]["object"]["key"] = "reports/customers/x.csv.report.json"
    folder = json.loads(json.dumps(event["Records"][0]))
    folder["s3"]["object"]["key"] = "incoming/customers/"
    # When the handler gets them
    result = clean.handler()({"Records": [outside, folder]}, clean.stack.context())
    # Then nothing is posted and both are reported as ignored
    assert [f.get("ignored") is not None for f in result["files"]] == [True, True]
    assert clean.data_posts() == []
