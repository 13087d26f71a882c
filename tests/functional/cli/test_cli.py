"""The operator CLI (`python -m monetate_ingest`) against the embedded local stack: moto for AWS,
the Monetate sandbox for Monetate, settings from the environment the stack patches in."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from monetate_ingest.cli import main

from local.samples import purchases_schema
from local.sandbox.faults import FaultConfig
from local.stack import USERNAME, LocalStack, new_key_pair

PURCHASES = purchases_schema()
CSV = (
    b"purchase_id,customer_id,purchase_time,price\n"
    b"p1,c1,2024-05-01T10:00:00Z,9.5\n"
    b"p2,c2,2024-05-01T11:00:00Z,not-a-number\n"
    b"p3,c3,2024-05-01T12:00:00Z,3\n"
)


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(*argv: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def schema(name: str) -> dict[str, object]:
    return {**PURCHASES, "name": name}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as st:
        st.sandbox.add_schema(schema("purchases"))
        yield st


@pytest.fixture(autouse=True)
def _no_faults(stack: LocalStack) -> Iterator[None]:
    yield
    stack.sandbox.faults = FaultConfig()


def issued_tokens(stack: LocalStack) -> list[str]:
    """Every access token the sandbox has minted so far (its authority's table)."""
    return list(stack.sandbox._api.authority._tokens)


# --- check -----------------------------------------------------------------------------------


def test_check_shows_user_expiry_and_schemas_but_never_the_token(stack: LocalStack) -> None:
    # Given the stack's secret, a registered key and a schema
    before = set(issued_tokens(stack))

    # When the operator checks the credentials
    run = cli("check")

    # Then the API user, the token's expiry and the schemas are shown, and exit status is 0
    assert run.code == 0, run.err
    assert f"API user:     {USERNAME}" in run.out
    assert re.search(r"expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \((\d+) s left\)", run.out)
    left = int(re.search(r"\((\d+) s left\)", run.out).group(1))  # type: ignore[union-attr]
    assert 3500 < left <= 3600
    assert re.search(r"purchases\s+event\s+4", run.out)
    # And a token was minted, yet neither it nor any key material appears anywhere
    minted = set(issued_tokens(stack)) - before
    assert minted
    for token in issued_tokens(stack):
        assert token not in run.out and token not in run.err
    for line in stack.private_pem.splitlines()[1:-1]:
        assert line not in run.out and line not in run.err
    assert "Token " not in run.out


def test_verbose_logs_go_to_stderr_without_secrets(stack: LocalStack) -> None:
    # Given/When check runs with --verbose
    run = cli("check", "--verbose")

    # Then the package's logs are on stderr (stdout stays the report), with no token or key in them
    assert run.code == 0, run.err
    assert "minted Monetate token" in run.err and "minted Monetate token" not in run.out
    for token in issued_tokens(stack):
        assert token not in run.err
    assert "PRIVATE KEY" not in run.err


def test_check_with_a_revoked_key_is_one_clear_line_and_exit_2(stack: LocalStack) -> None:
    # Given a second API user whose key Monetate revoked, with its own secret
    private, public = new_key_pair()
    stack.sandbox.register_key("api-999-revoked", public)
    sm = stack.moto.client("secretsmanager")
    arn = sm.create_secret(
        Name="monetate/revoked",
        SecretString=json.dumps({"username": "api-999-revoked", "private_key": private}),
    )["ARN"]
    stack.sandbox.revoke_key("api-999-revoked")

    # When the operator checks that secret
    run = cli("check", "--secret-id", arn)

    # Then one line on stderr says the key was revoked, nothing on stdout, exit status 2
    assert run.code == 2
    assert run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("monetate-ingest: error:")
    assert "revoked" in lines[0]
    assert "PRIVATE KEY" not in run.err


def test_check_with_a_secret_that_does_not_exist_exits_2(stack: LocalStack) -> None:
    # Given a secret id nobody created
    # When the operator checks with it
    run = cli("check", "--secret-id", "monetate/nope")

    # Then the error names the secret and exit status is 2
    assert run.code == 2
    assert "monetate/nope" in run.err and run.err.count("\n") == 1


def test_check_without_a_retailer_says_how_to_set_it(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no MONETATE_RETAILER in the environment
    monkeypatch.delenv("MONETATE_RETAILER")

    # When the operator runs check without --retailer
    run = cli("check")

    # Then the one-line error says what to do
    assert run.code == 2
    assert run.err.strip() == "monetate-ingest: error: set MONETATE_RETAILER or pass --retailer"


# --- schema ----------------------------------------------------------------------------------


def test_schema_show_prints_fields_and_flags(stack: LocalStack) -> None:
    # Given the purchases schema
    # When it is shown
    run = cli("schema", "show", "purchases")

    # Then every field is a row with its type and flags
    assert run.code == 0, run.err
    assert "schema purchases (type event, 4 fields)" in run.out
    assert re.search(r"FIELD\s+TYPE\s+IDENTIFIER\s+UNIQUE_KEY\s+EVENT_TIME\s+REQUIRED", run.out)
    assert re.search(r"customer_id\s+STRING\s+yes\s*\n", run.out)
    assert re.search(r"purchase_id\s+STRING\s+yes\s*\n", run.out)
    assert re.search(r"price\s+NUMBER\s*\n", run.out)


def test_schema_show_of_an_unknown_schema_exits_2(stack: LocalStack) -> None:
    # Given no schema named ghosts
    # When it is shown
    run = cli("schema", "show", "ghosts")

    # Then a one-line error, exit 2
    assert run.code == 2
    assert "'ghosts' does not exist" in run.err


def test_schema_add_field_patches_the_schema(stack: LocalStack) -> None:
    # Given a schema without a coupon field
    stack.sandbox.add_schema(schema("orders_add"))

    # When the operator adds one (type in any case)
    run = cli("schema", "add-field", "orders_add", "coupon_code", "string")

    # Then Monetate has it and the new table shows it
    assert run.code == 0, run.err
    assert stack.sandbox.schema("orders_add")["fields"]["coupon_code"]["data_type"] == "STRING"
    assert re.search(r"coupon_code\s+STRING", run.out)
    # And adding it again is refused before any PATCH
    again = cli("schema", "add-field", "orders_add", "coupon_code", "NUMBER")
    assert again.code == 2 and "already has a field 'coupon_code'" in again.err


# --- push ------------------------------------------------------------------------------------


def test_push_posts_rows_and_writes_report_and_rejects_next_to_the_file(
    stack: LocalStack, tmp_path: Path
) -> None:
    # Given a CSV with one bad row and its schema in Monetate
    stack.sandbox.add_schema(schema("push_real"))
    data = tmp_path / "purchases.csv"
    data.write_bytes(CSV)

    # When it is pushed
    run = cli("push", str(data), "--schema", "push_real", "--batch-rows", "2", "--concurrency", "2")

    # Then the valid rows are in Monetate and the run completed (exit 0 despite the reject)
    assert run.code == 0, run.err
    assert sorted(r["purchase_id"] for r in stack.sandbox.rows("push_real")) == ["p1", "p3"]
    assert "status:      complete" in run.out
    assert "rows:        read 3  posted 2  rejected 1  parked 0" in run.out
    # And the report and the rejects file sit next to the file
    report = json.loads((tmp_path / "purchases.csv.report.json").read_text())
    assert report["status"] == "complete" and report["schema"] == "push_real"
    assert report["counts"] == {"read": 3, "posted": 2, "rejected": 1, "parked": 0, "unchanged": 0}
    assert report["rejects_key"] == str(tmp_path / "purchases.csv.rejects.jsonl")
    rejects = [json.loads(x) for x in (tmp_path / "purchases.csv.rejects.jsonl").read_text().splitlines()]
    assert [(r["line"], r.get("field")) for r in rejects] == [(3, "price")]
    assert str(tmp_path / "purchases.csv.report.json") in run.out
    # And no progress bar when stderr is not a terminal, and nothing else left behind
    assert run.err == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "purchases.csv",
        "purchases.csv.rejects.jsonl",
        "purchases.csv.report.json",
    ]


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, so the progress bar is drawn."""

    def isatty(self) -> bool:
        return True


def test_push_draws_a_progress_bar_on_a_terminal(stack: LocalStack, tmp_path: Path) -> None:
    # Given a 3,000-row file and stderr on a terminal
    stack.sandbox.add_schema(schema("push_bar"))
    rows = [f"p{i},c{i},2024-05-01T10:00:00Z,{i}" for i in range(3000)]
    data = tmp_path / "bar.csv"
    data.write_text("purchase_id,customer_id,purchase_time,price\n" + "\n".join(rows) + "\n")
    out, err = io.StringIO(), Terminal()

    # When it is pushed
    code = main(["push", str(data), "--schema", "push_bar", "--batch-rows", "100"], out=out, err=err)

    # Then the bar was redrawn in place and ends at 100% of the file with the final counts and a newline
    assert code == 0, err.getvalue()
    drawn = err.getvalue()
    assert drawn.startswith("\rbar.csv:") and drawn.endswith("\n") and drawn.count("\n") == 1
    final = drawn.rstrip("\n").rsplit("\r", 1)[-1]
    assert final.startswith("bar.csv: 100%|")
    done = re.search(r"\| (\S+)/(\S+) \[", final)  # bytes read / the file's size, e.g. 108k/108k
    assert done is not None and done.group(1) == done.group(2) == "108k"
    assert final.endswith("read 3,000  posted 3,000  rejected 0]")
    # And with --quiet nothing is drawn
    err_quiet = Terminal()
    assert main(["push", str(data), "--schema", "push_bar", "-q"], out=io.StringIO(), err=err_quiet) == 0
    assert err_quiet.getvalue() == ""


def test_push_dry_run_posts_nothing(stack: LocalStack, tmp_path: Path) -> None:
    # Given a CSV and an empty schema
    stack.sandbox.add_schema(schema("push_dry"))
    data = tmp_path / "dry.csv"
    data.write_bytes(CSV)
    posts_before = stack.sandbox.counts["data_posts"]

    # When it is pushed with --dry-run
    run = cli("push", str(data), "--schema", "push_dry", "--dry-run")

    # Then nothing reached Monetate, yet the report and rejects say what would have happened
    assert run.code == 0, run.err
    assert stack.sandbox.counts["data_posts"] == posts_before
    assert stack.sandbox.rows("push_dry") == []
    assert "dry run" in run.out
    report = json.loads((tmp_path / "dry.csv.report.json").read_text())
    assert report["dry_run"] is True
    assert report["counts"] == {"read": 3, "posted": 2, "rejected": 1, "parked": 0, "unchanged": 0}
    assert (tmp_path / "dry.csv.rejects.jsonl").exists()


def test_push_parks_undeliverable_rows_in_a_local_file_without_a_queue(
    stack: LocalStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given no records queue configured and Monetate failing every POST, with no client retries
    monkeypatch.delenv("RECORDS_QUEUE_URL")
    monkeypatch.setenv("HTTP_MAX_RETRIES", "0")
    stack.sandbox.add_schema(schema("push_park"))
    stack.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
    data = tmp_path / "park.csv"
    data.write_bytes(CSV)

    # When the file is pushed
    run = cli("push", str(data), "--schema", "push_park", "-q")

    # Then the valid rows are parked as SQS envelopes in FILE.parked.jsonl, and the file completes
    assert run.code == 0, run.err
    envelopes = [json.loads(x) for x in (tmp_path / "park.csv.parked.jsonl").read_text().splitlines()]
    assert sorted(r["purchase_id"] for e in envelopes for r in e["rows"]) == ["p1", "p3"]
    assert all(e["schema"] == "push_park" for e in envelopes)
    report = json.loads((tmp_path / "park.csv.report.json").read_text())
    assert report["counts"] == {"read": 3, "posted": 0, "rejected": 1, "parked": 2, "unchanged": 0}
    assert f"parked:      2 rows on {tmp_path / 'park.csv.parked.jsonl'}" in run.out


def test_push_to_an_unknown_schema_fails_with_exit_2(stack: LocalStack, tmp_path: Path) -> None:
    # Given a file for a schema Monetate does not have
    data = tmp_path / "x.csv"
    data.write_bytes(CSV)

    # When it is pushed
    run = cli("push", str(data), "--schema", "ghosts")

    # Then the report says failed and exit status is 2
    assert run.code == 2
    assert "status:      failed" in run.out and "unknown_schema" in run.out
    assert json.loads((tmp_path / "x.csv.report.json").read_text())["status"] == "failed"


# --- redrive ---------------------------------------------------------------------------------


def test_redrive_moves_the_dlq_back_to_the_records_queue(stack: LocalStack) -> None:
    # Given two messages in the records DLQ
    res = stack.resources
    bodies = {json.dumps({"schema": "purchases", "rows": [{"purchase_id": f"r{i}"}]}) for i in range(2)}
    for body in bodies:
        stack.sqs.send_message(QueueUrl=res.records_dlq_url, MessageBody=body)

    # When the operator redrives
    run = cli("redrive")

    # Then both are on the records queue, the DLQ is empty, and the count is printed
    assert run.code == 0, run.err
    assert run.out.startswith("moved 2 messages from ")
    got = stack.sqs.receive_message(QueueUrl=res.records_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    )
    assert {m["Body"] for m in got} == bodies
    left = stack.sqs.receive_message(QueueUrl=res.records_dlq_url, MaxNumberOfMessages=10).get("Messages", [])
    assert left == []
    stack.sqs.purge_queue(QueueUrl=res.records_queue_url)


def test_redrive_without_a_dlq_says_how_to_set_it(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no RECORDS_DLQ_URL
    monkeypatch.delenv("RECORDS_DLQ_URL")
    # When redrive runs without --dlq-url
    run = cli("redrive")
    # Then it says what to set
    assert run.code == 2
    assert run.err.strip() == "monetate-ingest: error: set RECORDS_DLQ_URL or pass --dlq-url"


# --- report ----------------------------------------------------------------------------------


def test_report_summarises_a_file_ingested_from_s3(stack: LocalStack) -> None:
    # Given a file that went through IngestFile on the stack
    stack.sandbox.add_schema(schema("via_s3"))
    stack.put_file("incoming/via_s3/day1.csv", CSV)
    stack.deliver_s3_events()
    bucket = stack.resources.bucket

    # When the operator asks for its report by the incoming key
    run = cli("report", "incoming/via_s3/day1.csv", "--bucket", bucket)

    # Then a readable summary: status, counts, timings, reject reasons and where the rejects are
    assert run.code == 0, run.err
    assert f"report:      s3://{bucket}/reports/via_s3/day1.csv.report.json" in run.out
    assert "status:      complete" in run.out
    assert "rows:        read 3  posted 2  rejected 1  parked 0" in run.out
    assert "timings:     started " in run.out
    assert "rejected by: price 1" in run.out
    assert f"rejects:     s3://{bucket}/rejects/via_s3/day1.csv.rejects.jsonl" in run.out
    # And the report key itself, or an s3:// URL with DATA_BUCKET unset, give the same summary
    by_key = cli("report", "reports/via_s3/day1.csv.report.json", "--bucket", bucket)
    by_url = cli("report", f"s3://{bucket}/incoming/via_s3/day1.csv")
    assert by_key.out == run.out == by_url.out
    # And --json prints the stored report
    assert json.loads(cli("report", f"s3://{bucket}/incoming/via_s3/day1.csv", "--json").out)["status"] == (
        "complete"
    )


def test_report_of_a_file_not_processed_yet_exits_2(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DATA_BUCKET set and no such report
    monkeypatch.setenv("DATA_BUCKET", stack.resources.bucket)
    # When asked
    run = cli("report", "incoming/via_s3/never.csv")
    # Then a clear error
    assert run.code == 2
    assert "no report at s3://" in run.err and "never.csv.report.json" in run.err
