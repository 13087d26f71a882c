"""The operator CLI's change-only sync pieces without the network: ``push --sync``, ``sync status``
and ``sync forget`` parsing and settings, their output, the confirmation, and the local file's
S3 answers (source time, no tags)."""

from __future__ import annotations

import argparse
import io
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from monetate_ingest.cli import main
from monetate_ingest.cli.args import build_parser
from monetate_ingest.cli.common import CliError, Context
from monetate_ingest.cli.local_io import LocalS3, local_etag
from monetate_ingest.cli.progress import Sample, counts_text
from monetate_ingest.cli.push import push_settings, sync_source
from monetate_ingest.cli.summary import describe
from monetate_ingest.cli.sync_cmd import Target, describe_status
from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.ledger import LedgerStatus

BASE_ENV = {"MONETATE_RETAILER": "acme", "MONETATE_SECRET_ID": "monetate/acme"}
DAY = 86_400.0


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def context(environ: dict[str, str], *argv: str, answer: str = "") -> Context:
    return Context(
        args=parse(*argv), out=io.StringIO(), err=io.StringIO(), environ=environ, inp=io.StringIO(answer)
    )


# --- parsing ---------------------------------------------------------------------------------


def test_push_sync_takes_changes_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    # Given push with and without --sync / When parsed / Then the mode is kept, absent means SYNC_MODE
    assert parse("push", "f.csv", "--schema", "s", "--sync", "changes").sync == "changes"
    assert parse("push", "f.csv", "--schema", "s", "--sync", "all").sync == "all"
    assert parse("push", "f.csv", "--schema", "s").sync is None
    # And anything else is refused by argparse with exit 2
    assert main(["push", "f.csv", "--schema", "s", "--sync", "some"]) == 2
    assert "argument --sync: invalid choice: 'some'" in capsys.readouterr().err


def test_sync_status_and_forget_parse() -> None:
    status = parse("sync", "status", "customers", "--table", "ledger")
    assert (status.target, status.schema, status.table) == (
        "monetate_ingest.cli.sync_cmd:status",
        "customers",
        "ledger",
    )
    forget = parse("sync", "forget", "customers", "--yes", "--profile", "prod")
    assert (forget.target, forget.schema, forget.yes, forget.table, forget.profile) == (
        "monetate_ingest.cli.sync_cmd:forget",
        "customers",
        True,
        None,
        "prod",
    )
    assert parse("sync", "forget", "customers").yes is False


def test_sync_needs_an_action_and_a_valid_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync"]) == 2 and "required: ACTION" in capsys.readouterr().err
    assert main(["sync", "status", "a/b"]) == 2 and "invalid schema name 'a/b'" in capsys.readouterr().err


def test_help_lists_the_sync_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sync" in out and "monetate-ingest sync forget customers --yes" in out


# --- push --sync: settings and the sync source -------------------------------------------------


def test_push_sync_changes_without_a_ledger_table_names_both_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given Monetate settings but no SYNC_LEDGER_TABLE, and a file to push
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SYNC_LEDGER_TABLE", raising=False)
    monkeypatch.delenv("SYNC_MODE", raising=False)
    data = tmp_path / "customers.csv"
    data.write_text("id\nc1\n")
    out, err = io.StringIO(), io.StringIO()
    # When it is pushed with --sync changes
    code = main(["push", str(data), "--schema", "customers", "--sync", "changes"], out=out, err=err)
    # Then one line names the flag, SYNC_MODE and SYNC_LEDGER_TABLE; exit 2, nothing else happened
    assert (code, out.getvalue()) == (2, "")
    assert err.getvalue() == (
        "monetate-ingest: error: --sync changes: "
        "SYNC_MODE=changes needs SYNC_LEDGER_TABLE, which is not set\n"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv"]


@pytest.mark.parametrize(
    ("environ", "flag", "mode"),
    [
        ({}, None, "all"),
        ({"SYNC_MODE": "changes", "SYNC_LEDGER_TABLE": "ledger"}, None, "changes"),
        ({"SYNC_MODE": "changes", "SYNC_LEDGER_TABLE": "ledger"}, "all", "all"),
        ({"SYNC_LEDGER_TABLE": "ledger"}, "changes", "changes"),
        ({"SYNC_MODE": "changes"}, "all", "all"),  # the flag wins over a broken environment
    ],
)
def test_push_sync_overrides_sync_mode_for_this_push(
    environ: dict[str, str], flag: str | None, mode: str
) -> None:
    # Given SYNC_* in the environment and maybe --sync
    argv = ["push", "f.csv", "--schema", "s"] + (["--sync", flag] if flag else [])
    ctx = context({**BASE_ENV, "SYNC_FULL_EVERY_DAYS": "3", **environ}, *argv)
    # When the push's settings are read / Then the flag decides the mode, the rest comes from the environment
    settings = push_settings(ctx)
    assert settings.sync.mode == mode and settings.sync.full_every_days == 3
    assert settings.sync.ledger_table == environ.get("SYNC_LEDGER_TABLE")


def test_the_push_sync_source_uses_the_ledger_table_only_with_changes() -> None:
    # Given --sync changes with a ledger table, and --sync all
    changes = context(
        {**BASE_ENV, "SYNC_LEDGER_TABLE": "ledger"}, "push", "f.csv", "--schema", "s", "--sync", "changes"
    )
    off = context(
        {**BASE_ENV, "SYNC_LEDGER_TABLE": "ledger"}, "push", "f.csv", "--schema", "s", "--sync", "all"
    )
    # When their sync sources are built (nothing is called yet: no client, no secret read)
    on_source = sync_source(changes, push_settings(changes), client=object())
    off_source = sync_source(off, push_settings(off), client=object())
    # Then changes reads and writes the DynamoDB ledger of that table, all needs none
    assert on_source.mode == "changes" and isinstance(on_source.ledger, DynamoLedger)
    assert on_source.ledger.table == "ledger"
    assert (on_source.retailer, on_source.environment) == ("acme", "production")
    assert off_source.mode == "all" and not isinstance(off_source.ledger, DynamoLedger)


# --- sync status / forget: output and confirmation --------------------------------------------


def target(days: int = 7) -> Target:
    return Target(
        table="ledger",
        schema="customers",
        retailer="acme",
        environment="production",
        full_every_days=days,
        scope="scope",
        ledger=DynamoLedger("ledger", client=object()),
    )


def test_status_lines_say_when_the_oldest_is_posted_again() -> None:
    # Given 1,234 entries, the oldest posted 2024-05-01 10:00 UTC, the newest a day later
    oldest = datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()
    found = LedgerStatus(1234, oldest, oldest + DAY)
    # When described two days later, with SYNC_FULL_EVERY_DAYS 7
    lines = describe_status(target(), found, now=oldest + 2 * DAY)
    # Then the count, both posts in UTC ISO, and when the oldest is posted again
    assert lines == [
        "ledger:      schema customers of acme/production in table ledger",
        "records:     1,234",
        "oldest post: 2024-05-01T10:00:00Z",
        "newest post: 2024-05-02T10:00:00Z",
        "full every:  7 days (SYNC_FULL_EVERY_DAYS): the oldest will be posted again at the first load "
        "after 2024-05-08T10:00:00Z",
    ]
    # And once that time passed, it is due
    late = describe_status(target(1), found, now=oldest + 2 * DAY)
    assert (
        late[-1]
        == "full every:  1 day (SYNC_FULL_EVERY_DAYS): the oldest is due: it is posted again at the next load"
    )


def test_status_of_an_empty_schema_says_the_next_load_posts_every_row() -> None:
    lines = describe_status(target(), LedgerStatus(), now=0)
    assert lines[1].startswith("records:     0 (nothing of customers loaded with SYNC_MODE=changes yet")
    assert lines[1].endswith("the next load of customers posts every row")


@pytest.mark.parametrize(
    ("answer", "yes"), [("y\n", True), ("YES\n", True), ("n\n", False), ("\n", False), ("", False)]
)
def test_confirm_takes_only_y_or_yes(answer: str, yes: bool) -> None:
    # Given an answer on the input (or end of input) / When asked / Then only y or yes confirm
    ctx = context(BASE_ENV, "sync", "forget", "customers", answer=answer)
    assert ctx.confirm("forget?") is yes
    assert ctx.err.getvalue().startswith("forget? [y/N] ")  # type: ignore[attr-defined]
    assert ctx.out.getvalue() == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize("action", ["status", "forget"])
def test_sync_commands_need_the_ledger_table(monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    # Given no SYNC_LEDGER_TABLE and no --table
    monkeypatch.delenv("SYNC_LEDGER_TABLE", raising=False)
    out, err = io.StringIO(), io.StringIO()
    # When status or forget runs / Then it says what to set, before anything is read
    code = main(["sync", action, "customers"], out=out, err=err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue() == "monetate-ingest: error: set SYNC_LEDGER_TABLE or pass --table\n"


# --- what push shows and reads -------------------------------------------------------------------


def test_a_report_with_sync_shows_unchanged_and_the_sync_block() -> None:
    # Given a report of a change-only load
    report = {
        "status": "complete",
        "schema": "customers",
        "counts": {"read": 1000, "posted": 30, "rejected": 2, "parked": 0, "unchanged": 968},
        "sync": {"mode": "changes", "new": 10, "changed": 20, "unchanged": 968, "superseded": 3},
    }
    # When described / Then unchanged joins the rows and the sync block has its own line
    text = "\n".join(describe(report))
    assert "rows:        read 1,000  posted 30  rejected 2  parked 0  unchanged 968" in text
    assert "sync:        changes: new 10  changed 20  unchanged 968 (superseded 3)" in text
    # And with sync off the rows line is as before, the mode said once
    off = {**report, "counts": {**report["counts"], "unchanged": 0}, "sync": {"mode": "all"}}
    text = "\n".join(describe(off))
    assert "rows:        read 1,000  posted 30  rejected 2  parked 0\n" in text + "\n"
    assert "sync:        all (every row posted, the ledger not used)" in text


def test_the_progress_bar_counts_unchanged_rows() -> None:
    assert counts_text(Sample(read=10, posted=2, unchanged=8)) == "read 10  posted 2  rejected 0  unchanged 8"


def test_a_local_file_answers_with_its_source_time_and_no_tags(tmp_path: Path) -> None:
    # Given a local file / When the pipeline asks for its object, head and tags
    source = tmp_path / "customers.csv"
    source.write_bytes(b"id\nc1\n")
    os.utime(source, (1_714_557_600.75, 1_714_557_600.75))
    s3 = LocalS3(tmp_path)
    got = s3.get_object(Bucket="local", Key=str(source))
    # Then LastModified is the mtime in whole seconds (like S3), the ETag the push's, no metadata or tags
    assert got["LastModified"] == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert got["ETag"] == f'"{local_etag(source.stat())}"' and got["Metadata"] == {}
    assert got["Body"].read() == b"id\nc1\n"
    assert s3.head_object(Bucket="local", Key=str(source))["ContentLength"] == 6
    assert s3.get_object_tagging(Bucket="local", Key=str(source)) == {"TagSet": []}


def test_cli_errors_carry_their_exit_code() -> None:
    assert CliError("x").code == 2 and CliError("not confirmed", code=1).code == 1
