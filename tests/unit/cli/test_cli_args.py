"""The operator CLI without the network: argument parsing and its errors, settings overrides,
report-key mapping, the report summary and the local S3/SQS stand-ins."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from monetate_ingest.cli import main
from monetate_ingest.cli.args import build_parser
from monetate_ingest.cli.check import iso_utc, token_expiry
from monetate_ingest.cli.common import CliError, Context, table
from monetate_ingest.cli.local_io import FileQueue, LocalFileRef, LocalS3
from monetate_ingest.cli.ops import report_location
from monetate_ingest.cli.summary import describe

ROOT = Path(__file__).resolve().parents[3]


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run main() on bad arguments; assert exit status 2 and return argparse's error line."""
    assert main(list(argv)) == 2
    err = capsys.readouterr().err
    assert "usage: monetate-ingest" in err
    return err.strip().splitlines()[-1]


# --- parsing ---------------------------------------------------------------------------------


def test_help_lists_every_command_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    # Given/When the top-level help is asked for
    code = main(["--help"])
    # Then every command is listed and the exit status is 0
    out = capsys.readouterr().out
    assert code == 0
    for command in ("check", "schema", "push", "redrive", "report"):
        assert command in out
    assert "exit status:" in out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    # Given no arguments / When parsed / Then argparse names the missing command
    assert "required: COMMAND" in parse_error(capsys)


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid choice: 'pull'" in parse_error(capsys, "pull")


def test_push_parses_its_options() -> None:
    # Given a full push command line / When parsed
    args = parse(
        "push", "f.csv", "--schema", "purchases", "--dry-run", "--batch-rows", "250", "--concurrency", "8"
    )
    # Then every option is typed and the target is the push command
    assert (args.file, args.schema, args.dry_run, args.batch_rows, args.concurrency) == (
        "f.csv",
        "purchases",
        True,
        250,
        8,
    )
    assert args.target == "monetate_ingest.cli.push:run"
    assert args.quiet is False


def test_push_requires_a_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert "the following arguments are required: --schema" in parse_error(capsys, "push", "f.csv")


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--batch-rows", "0", "invalid batch row count '0': expected 1 to 10000"),
        ("--batch-rows", "lots", "invalid batch row count 'lots': expected a whole number"),
        ("--batch-rows", "10001", "expected 1 to 10000"),
        ("--concurrency", "65", "invalid concurrency '65': expected 1 to 64"),
        ("--concurrency", "-1", "expected 1 to 64"),
    ],
)
def test_push_numbers_are_range_checked(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    # Given an out-of-range or non-numeric value / When parsed / Then the error says the range
    line = parse_error(capsys, "push", "f.csv", "--schema", "s", f"{flag}={value}")
    assert message in line


def test_schema_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    assert "required: ACTION" in parse_error(capsys, "schema")


def test_add_field_uppercases_the_type() -> None:
    args = parse("schema", "add-field", "purchases", "coupon_code", "multi_string")
    assert (args.name, args.field, args.type) == ("purchases", "coupon_code", "MULTI_STRING")


@pytest.mark.parametrize("field", ["1st", "_x", "coupon-code", "coupon code", "é", ""])
def test_add_field_rejects_bad_field_names(capsys: pytest.CaptureFixture[str], field: str) -> None:
    # Given a name that is not [A-Za-z][A-Za-z0-9_]* / When parsed / Then a clear error
    line = parse_error(capsys, "schema", "add-field", "purchases", field, "STRING")
    assert f"invalid field name {field!r}" in line


def test_add_field_rejects_unknown_types(capsys: pytest.CaptureFixture[str]) -> None:
    line = parse_error(capsys, "schema", "add-field", "purchases", "x", "TEXT")
    assert "invalid field type 'TEXT': choose from STRING, MULTI_STRING, NUMBER, DATETIME, BOOLEAN" in line


def test_schema_names_with_slashes_are_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid schema name 'a/b'" in parse_error(capsys, "schema", "show", "a/b")


def test_global_flags_work_before_and_after_the_command() -> None:
    # Given global flags on either side of the subcommand
    before = parse("--profile", "prod", "--region", "eu-west-1", "-v", "check")
    after = parse("check", "--profile", "prod", "--region", "eu-west-1", "--verbose")
    neither = parse("check")
    # Then both parse the same, and a subcommand without them keeps the top-level defaults
    for args in (before, after):
        assert (args.profile, args.region, args.verbose) == ("prod", "eu-west-1", True)
    assert (neither.profile, neither.region, neither.verbose, neither.retailer) == (None, None, False, None)
    assert parse("--retailer", "acme", "push", "f.csv", "--schema", "s").retailer == "acme"


def test_redrive_and_report_options() -> None:
    args = parse("redrive", "--dlq-url", "https://q/dlq", "--queue-url", "https://q/records")
    assert (args.dlq_url, args.queue_url, args.wait) == ("https://q/dlq", "https://q/records", 60)
    args = parse("report", "incoming/s/f.csv", "--bucket", "b", "--json")
    assert (args.key, args.bucket, args.json) == ("incoming/s/f.csv", "b", True)


# --- settings from the environment and the flags ------------------------------------------------


def context(environ: dict[str, str], *argv: str) -> Context:
    return Context(args=parse(*argv), out=io.StringIO(), err=io.StringIO(), environ=environ)


BASE_ENV = {"MONETATE_RETAILER": "acme", "MONETATE_SECRET_ID": "monetate/acme"}


def test_flags_override_the_environment() -> None:
    # Given settings in the environment and flags for three of them
    ctx = context(
        {**BASE_ENV, "MONETATE_API_URL": "https://api.monetate.net"},
        "--retailer",
        "other",
        "--secret-id",
        "arn:secret",
        "--api-url",
        "http://127.0.0.1:8080/",
        "check",
    )
    # When the settings are read / Then the flags win
    settings = ctx.settings().monetate
    assert (settings.retailer, settings.secret_id, settings.api_url) == (
        "other",
        "arn:secret",
        "http://127.0.0.1:8080",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MONETATE_SECRET_ID": "s"}, "set MONETATE_RETAILER or pass --retailer"),
        ({"MONETATE_RETAILER": "acme"}, "set MONETATE_SECRET_ID or pass --secret-id"),
        ({**BASE_ENV, "MONETATE_TOKEN_TTL": "5"}, "MONETATE_TOKEN_TTL='5' is not valid"),
    ],
)
def test_missing_or_bad_settings_say_what_to_do(environ: dict[str, str], message: str) -> None:
    with pytest.raises(CliError, match=message):
        context(environ, "check").settings()


def test_a_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(CliError, match=r"^--api-url 'ftp://x' is not valid: expected scheme and host"):
        context(BASE_ENV, "--api-url", "ftp://x", "check").settings()


def test_main_prints_settings_errors_as_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an environment without Monetate settings
    monkeypatch.delenv("MONETATE_RETAILER", raising=False)
    out, err = io.StringIO(), io.StringIO()
    # When check runs
    code = main(["check"], out=out, err=err)
    # Then one line on stderr, exit 2, nothing on stdout
    assert (code, out.getvalue(), err.getvalue()) == (
        2,
        "",
        "monetate-ingest: error: set MONETATE_RETAILER or pass --retailer\n",
    )


def test_push_checks_the_file_before_anything_else(tmp_path: Path) -> None:
    # Given a missing file, a folder and a file of unknown format
    (tmp_path / "notes.txt").write_text("x")
    for target, message in (
        (tmp_path / "missing.csv", "no such file: "),
        (tmp_path, "not a regular file: "),
        (tmp_path / "notes.txt", "cannot tell the format of 'notes.txt'"),
    ):
        err = io.StringIO()
        # When pushed (no settings, no network needed) / Then a clear error and exit 2
        assert main(["push", str(target), "--schema", "s"], out=io.StringIO(), err=err) == 2
        assert message in err.getvalue()


def test_env_value_from_flag_or_environment() -> None:
    ctx = context({"RECORDS_DLQ_URL": "https://q/dlq"}, "redrive")
    assert ctx.env("RECORDS_DLQ_URL", None, "--dlq-url") == "https://q/dlq"
    assert ctx.env("RECORDS_DLQ_URL", "https://q/other", "--dlq-url") == "https://q/other"
    with pytest.raises(CliError, match=r"^set RECORDS_QUEUE_URL or pass --queue-url$"):
        ctx.env("RECORDS_QUEUE_URL", None, "--queue-url")


def test_importing_the_cli_loads_neither_boto3_nor_requests() -> None:
    # Given a clean interpreter / When the CLI package is imported / Then no heavy module came with it
    heavy = "('boto3', 'botocore', 'requests')"
    code = f"import sys, monetate_ingest.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "monetate_ingest")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "monetate_ingest", "--help"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "layers" / "monetate_ingest")},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.startswith("usage: monetate-ingest")


# --- report keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "bucket", "expected"),
    [
        ("incoming/purchases/2024/day1.csv", "b", ("b", "reports/purchases/2024/day1.csv.report.json")),
        ("dry-run/purchases/day1.csv", "b", ("b", "reports/dry-run/purchases/day1.csv.report.json")),
        ("reports/purchases/day1.csv.report.json", "b", ("b", "reports/purchases/day1.csv.report.json")),
        ("s3://other/incoming/p/f.jsonl", None, ("other", "reports/p/f.jsonl.report.json")),
        ("/incoming/p/f.csv", "b", ("b", "reports/p/f.csv.report.json")),
    ],
)
def test_report_location(key: str, bucket: str | None, expected: tuple[str, str]) -> None:
    assert report_location(key, bucket) == expected


@pytest.mark.parametrize(
    ("key", "bucket", "message"),
    [
        ("incoming/p/f.csv", None, "set DATA_BUCKET or pass --bucket"),
        ("elsewhere/f.csv", "b", "is not a file key"),
        ("incoming/p", "b", "is not a file key"),
        ("reports/p/f.csv", "b", "is not a .report.json"),
        ("s3://bucket-only", None, "expected s3://BUCKET/KEY"),
    ],
)
def test_report_location_errors(key: str, bucket: str | None, message: str) -> None:
    with pytest.raises(CliError, match=message):
        report_location(key, bucket)


def test_report_reads_a_local_report_file(tmp_path: Path) -> None:
    # Given a report written next to a pushed file
    path = tmp_path / "f.csv.report.json"
    path.write_text(json.dumps(REPORT))
    out = io.StringIO()
    # When summarised / Then the summary is printed from the file
    assert main(["report", str(path)], out=out, err=io.StringIO()) == 0
    assert f"report:      {path}" in out.getvalue() and "status:      complete" in out.getvalue()


def test_report_refuses_json_that_is_not_a_report(tmp_path: Path) -> None:
    path = tmp_path / "other.report.json"
    path.write_text("[1, 2]")
    err = io.StringIO()
    assert main(["report", str(path)], out=io.StringIO(), err=err) == 2
    assert "is not a monetate-ingest report" in err.getvalue()


# --- summary ---------------------------------------------------------------------------------

REPORT = {
    "source": {"bucket": "data", "key": "incoming/purchases/day1.csv", "etag": "e", "size": 12345},
    "schema": "purchases",
    "status": "complete",
    "dry_run": False,
    "counts": {"read": 1000, "posted": 990, "rejected": 8, "parked": 2, "unchanged": 0},
    "timings": {"started": "2024-05-01T10:00:00.000Z", "finished": "2024-05-01T10:00:42.500Z"},
    "errors": [],
    "rejects_key": "rejects/purchases/day1.csv.rejects.jsonl",
    "reject_reasons": {"price": 3, "email": 1, "row": 1, "a": 1, "b": 1, "monetate_refused": 1},
    "batches": {"posted": 2, "parked": 1, "posts": 3},
    "invocations": 2,
}


def test_describe_a_report() -> None:
    # Given a stored report / When described
    lines = describe(REPORT, locate=lambda key: f"s3://data/{key}")
    text = "\n".join(lines)
    # Then status, counts, timings, top reasons and the rejects location read plainly
    assert "status:      complete" in text
    assert "source:      s3://data/incoming/purchases/day1.csv (12,345 bytes)" in text
    assert "rows:        read 1,000  posted 990  rejected 8  parked 2" in text
    assert "42.5 s, 2 invocations" in text
    assert "posts:       3 POSTs, 1 batches parked" in text
    assert "rejected by: price 3, a 1, b 1, email 1, monetate_refused 1 (+1 more)" in text
    assert "rejects:     s3://data/rejects/purchases/day1.csv.rejects.jsonl" in text


def test_describe_a_failed_dry_run() -> None:
    failed = {
        **REPORT,
        "status": "failed",
        "dry_run": True,
        "errors": [{"code": "unknown_columns", "message": "columns 'x' are not fields"}],
        "reject_reasons": {},
        "rejects_key": None,
    }
    text = "\n".join(describe(failed))
    assert "status:      failed (dry run: nothing was posted)" in text
    assert "errors:      unknown_columns: columns 'x' are not fields" in text
    assert "rejects:" not in text and "rejected by:" not in text


# --- check helpers ---------------------------------------------------------------------------


def test_token_expiry_reads_the_providers_expiry_and_never_needs_the_token() -> None:
    assert token_expiry(SimpleNamespace(expires_at=1_700_000_000)) == 1_700_000_000.0
    assert token_expiry(SimpleNamespace(expires_at=None)) is None
    assert iso_utc(0) == "1970-01-01T00:00:00Z"


def test_table_aligns_columns_and_shows_flags() -> None:
    text = table(("NAME", "FLAG", "N"), [("a", True, 1200), ("long_name", False, None)])
    assert text.splitlines() == ["  NAME       FLAG  N", "  a          yes   1,200", "  long_name"]


# --- local stand-ins -------------------------------------------------------------------------


def test_local_s3_round_trip(tmp_path: Path) -> None:
    # Given the stand-in with a scratch folder and a local file
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    s3 = LocalS3(scratch)
    source = tmp_path / "f.csv"
    source.write_bytes(b"a,b\n1,2\n")
    # When the pipeline's calls are made
    body = s3.get_object(Bucket="local", Key=str(source), IfMatch="etag")["Body"]
    assert body.read(2) + body.read() == b"a,b\n1,2\n"
    assert s3.readers[str(source)].bytes_read == 8
    s3.put_object(Bucket="local", Key="rejects/.parts/s/f.csv/e/000000.jsonl", Body=b"x\n")
    s3.put_object(Bucket="local", Key="rejects/.parts/s/f.csv/e/000001.jsonl", Body="y\n")
    s3.upload_fileobj(io.BytesIO(b"joined\n"), "local", str(tmp_path / "f.csv.rejects.jsonl"))
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="local", Prefix="rejects/.parts/s/"))
    keys = [{"Key": o["Key"]} for o in pages[0]["Contents"]]
    s3.delete_objects(Bucket="local", Delete={"Objects": keys, "Quiet": True})
    # Then absolute keys are real files, the others lived in scratch and are gone
    assert len(keys) == 2
    assert (tmp_path / "f.csv.rejects.jsonl").read_bytes() == b"joined\n"
    assert list(scratch.iterdir()) == []


def test_local_file_ref_puts_outputs_next_to_the_file() -> None:
    ref = LocalFileRef(bucket="local", key="/data/f.csv", etag="e", size=1, schema="s", name="f.csv")
    assert (ref.report_key, ref.rejects_key, ref.parked_path) == (
        "/data/f.csv.report.json",
        "/data/f.csv.rejects.jsonl",
        "/data/f.csv.parked.jsonl",
    )
    assert not ref.scratch_prefix.startswith("/")


def test_file_queue_appends_envelopes(tmp_path: Path) -> None:
    queue = FileQueue(tmp_path / "f.csv.parked.jsonl")
    for i in range(2):
        queue.send_message(QueueUrl="file:///x", MessageBody=json.dumps({"schema": "s", "rows": [{"i": i}]}))
    lines = (tmp_path / "f.csv.parked.jsonl").read_text().splitlines()
    assert [json.loads(x)["rows"] for x in lines] == [[{"i": 0}], [{"i": 1}]]
    assert queue.sent == 2
