"""``sync status``, ``sync forget`` and ``push --sync`` against the embedded local stack (moto's
ledger table as the template makes it, the sandbox for Monetate, the stack's secret)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from monetate_ingest.cli import main
from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.fingerprint import LedgerHasher, ledger_secret

from local.samples import customers_schema
from local.stack import RETAILER, LocalStack

POSTED = datetime(2024, 5, 1, 10, tzinfo=UTC).timestamp()


@dataclass
class Run:
    code: int
    out: str
    err: str


def cli(*argv: str, answer: str = "") -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, inp=io.StringIO(answer))
    return Run(code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as st:
        yield st


def hasher(stack: LocalStack, schema: str) -> LedgerHasher:
    """The hasher the writers use for ``schema``: the key derived from the stack's API user's key."""
    key = load_pem_private_key(stack.private_pem.encode(), password=None)
    return LedgerHasher(ledger_secret(key), RETAILER, "production", schema)  # type: ignore[arg-type]


def ledger(stack: LocalStack) -> DynamoLedger:
    return DynamoLedger(stack.resources.ledger_table, client=stack.moto.client("dynamodb"))


def seed(stack: LocalStack, schema: str, count: int) -> None:
    h = hasher(stack, schema)
    rows = [
        LedgerEntry(h.key_id(f"c{i}"), b"f" * 16, POSTED + i * 3600, SourceTime(POSTED, "etag", i + 2))
        for i in range(count)
    ]
    assert ledger(stack).record(rows, 7).written == count


def assert_no_secret(stack: LocalStack, run: Run) -> None:
    for line in stack.private_pem.splitlines()[1:-1]:
        assert line not in run.out and line not in run.err
    assert "PRIVATE KEY" not in run.out + run.err


# --- sync status ----------------------------------------------------------------------------------


def test_sync_status_shows_one_schemas_records_and_when_the_oldest_is_posted_again(stack: LocalStack) -> None:
    # Given 3 entries of status_a posted an hour apart from 2024-05-01 10:00 UTC, and 5 of status_b
    seed(stack, "status_a", 3)
    seed(stack, "status_b", 5)

    # When the operator asks for status_a's status
    run = cli("sync", "status", "status_a")

    # Then its records, the oldest and newest post in UTC, and SYNC_FULL_EVERY_DAYS's consequence
    assert run.code == 0, run.err
    table = stack.resources.ledger_table
    assert run.out.splitlines() == [
        f"ledger:      schema status_a of {RETAILER}/production in table {table}",
        "records:     3",
        "oldest post: 2024-05-01T10:00:00Z",
        "newest post: 2024-05-01T12:00:00Z",
        "full every:  7 days (SYNC_FULL_EVERY_DAYS): the oldest is due: it is posted again at the next load",
    ]
    assert run.err == ""
    assert_no_secret(stack, run)


def test_sync_status_of_a_schema_never_loaded_says_everything_is_posted(stack: LocalStack) -> None:
    run = cli("sync", "status", "never_loaded")
    assert run.code == 0, run.err
    assert "records:     0 (nothing of never_loaded loaded with SYNC_MODE=changes yet" in run.out


def test_sync_status_of_a_missing_table_is_one_clear_line_and_exit_2(stack: LocalStack) -> None:
    # Given a table name nobody created
    # When status runs on it
    run = cli("sync", "status", "status_a", "--table", "no-such-ledger")

    # Then one line names the table, the variable and the AWS error code; nothing on stdout
    assert run.code == 2 and run.out == ""
    lines = run.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        "monetate-ingest: error: the sync ledger table 'no-such-ledger' (SYNC_LEDGER_TABLE) could not be "
        "scanned: ResourceNotFoundException"
    )
    assert "Traceback" not in run.err


# --- sync forget ----------------------------------------------------------------------------------


def test_sync_forget_asks_first_and_drops_only_that_schema(stack: LocalStack) -> None:
    # Given 4 entries of forget_a and 2 of forget_b
    seed(stack, "forget_a", 4)
    seed(stack, "forget_b", 2)

    # When the operator declines the confirmation (or the input ends)
    for answer in ("n\n", ""):
        declined = cli("sync", "forget", "forget_a", answer=answer)
        # Then nothing is dropped, exit status 1, the question and the refusal on stderr
        assert declined.code == 1 and declined.out == ""
        assert "forget every ledger entry of schema forget_a" in declined.err
        assert "[y/N]" in declined.err and "not confirmed: nothing was forgotten" in declined.err
    assert ledger(stack).status(hasher(stack, "forget_a").scope).records == 4

    # When they confirm
    run = cli("sync", "forget", "forget_a", answer="y\n")

    # Then forget_a's 4 entries are gone, forget_b's kept, and the output says what happens next
    assert run.code == 0, run.err
    table = stack.resources.ledger_table
    assert run.out.splitlines() == [
        f"forgot 4 ledger entries of schema forget_a of {RETAILER}/production in table {table}",
        "the next load of forget_a posts every row",
    ]
    assert ledger(stack).status(hasher(stack, "forget_a").scope).records == 0
    assert ledger(stack).status(hasher(stack, "forget_b").scope).records == 2
    assert_no_secret(stack, run)


def test_sync_forget_yes_does_not_ask(stack: LocalStack) -> None:
    # Given 1 entry / When forgotten with --yes and no input at all / Then dropped without a question
    seed(stack, "forget_yes", 1)
    run = cli("sync", "forget", "forget_yes", "--yes")
    assert run.code == 0, run.err
    assert run.err == "" and run.out.startswith("forgot 1 ledger entry of schema forget_yes")
    assert cli("sync", "forget", "forget_yes", "-y").out.startswith("forgot 0 ledger entries")


# --- push --sync -------------------------------------------------------------------------------------

CSV = b"customer_id,email,points\nc1,a@example.com,10\nc2,b@example.com,20\nc3,c@example.com,1e3\n"


def test_push_sync_changes_dry_run_leaves_the_ledger_untouched(stack: LocalStack, tmp_path: Path) -> None:
    # Given a customers file and an empty ledger for its schema
    stack.sandbox.add_schema(customers_schema("push_dry_sync"))
    data = tmp_path / "customers.csv"
    data.write_bytes(CSV)
    posts = stack.sandbox.counts["data_posts"]

    # When it is pushed as a dry run with --sync changes
    run = cli("push", str(data), "--schema", "push_dry_sync", "--sync", "changes", "--dry-run", "-q")

    # Then it completes, posts nothing and writes nothing to the ledger
    assert run.code == 0, run.err
    assert stack.sandbox.counts["data_posts"] == posts
    assert ledger(stack).status(hasher(stack, "push_dry_sync").scope).records == 0


def test_push_sync_changes_twice_posts_nothing_the_second_time(stack: LocalStack, tmp_path: Path) -> None:
    # Given a customers file pushed once with --sync changes
    stack.sandbox.add_schema(customers_schema("push_sync"))
    data = tmp_path / "customers.csv"
    data.write_bytes(CSV)
    first = cli("push", str(data), "--schema", "push_sync", "--sync", "changes", "-q")
    assert first.code == 0, first.err
    assert cli("sync", "status", "push_sync").out.splitlines()[1] == "records:     3"
    posts = stack.sandbox.counts["data_posts"]

    # When the same file is pushed again
    again = cli("push", str(data), "--schema", "push_sync", "--sync", "changes", "-q")

    # Then nothing is posted and every row is counted unchanged
    assert again.code == 0, again.err
    assert stack.sandbox.counts["data_posts"] == posts
    report = json.loads((tmp_path / "customers.csv.report.json").read_text())
    assert report["counts"]["unchanged"] == 3 and report["counts"]["posted"] == 0
    assert "unchanged 3" in again.out

    # And with --sync all every row is posted again
    full = cli("push", str(data), "--schema", "push_sync", "--sync", "all", "-q")
    assert full.code == 0, full.err
    assert json.loads((tmp_path / "customers.csv.report.json").read_text())["counts"]["posted"] == 3
