"""Change-only sync in IngestFile (issue 14), through the real handler, moto's ledger table and the
sandbox: the second load of a nightly export posts only what changed.

The ledger table is shared by the module's tests and not reset: each test uses its own record ids.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from monetate_ingest.records.handler import make_handler as make_post_records_handler

from local.aws import patched_environ
from local.sandbox.faults import FaultConfig
from local.sqs_poller import SqsPoller
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import HEADER, Harness, customers_csv, visits_csv

harness = conftest_ingest.harness
clean = conftest_ingest.clean

SYNC = {"SYNC_MODE": "changes", "BATCH_MAX_ROWS": "50"}


def _row(key: str, i: int, *, points: Any = None, vip: str = "true") -> str:
    return f'{key},u{i}@x.com,{i if points is None else points},{vip},2024-05-01 10:00,"a,b"'


def _csv(rows: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def _posted_rows(h: Harness, since: int, prefix: str) -> list[dict[str, Any]]:
    """Rows of ``prefix`` Monetate stored since :func:`_mark` (which emptied the sandbox)."""
    return h.stored("customers", prefix)


def _mark(h: Harness) -> int:
    """Forget the sandbox's rows (schemas and keys stay): what is stored next was posted next."""
    h.sandbox.reset()
    return 0


def test_the_same_file_loaded_twice_posts_nothing_the_second_time(clean: Harness) -> None:
    # Given a 120-row export loaded once with change-only sync
    body = customers_csv(120, prefix="twice-")
    clean.drop("incoming/customers/sync/twice-1.csv", body, **SYNC)
    first = clean.report("incoming/customers/sync/twice-1.csv")
    assert first["counts"] == {"read": 120, "posted": 120, "rejected": 0, "parked": 0, "unchanged": 0}
    assert first["sync"] == {"mode": "changes", "new": 120, "changed": 0, "unchanged": 0, "superseded": 0}
    # When the same export arrives again the next night
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/twice-2.csv", body, **SYNC)
    # Then nothing is posted and every row is reported unchanged
    assert _posted_rows(clean, mark, "twice-") == []
    report = clean.report("incoming/customers/sync/twice-2.csv")
    assert report["status"] == "complete"
    assert report["counts"] == {"read": 120, "posted": 0, "rejected": 0, "parked": 0, "unchanged": 120}
    assert report["sync"] == {"mode": "changes", "new": 0, "changed": 0, "unchanged": 120, "superseded": 0}
    assert report["batches"]["posts"] == 0


def test_the_same_data_respelled_and_reordered_is_unchanged(clean: Harness) -> None:
    # Given rows loaded with one spelling
    rows = [
        "resp-1,a@x.com,1000,true,2024-05-01,x",
        'resp-2,b@x.com,2.50,no,2024-05-01T00:00:00Z,"a,b"',
    ]
    clean.drop("incoming/customers/sync/respell-1.csv", _csv(rows), **SYNC)
    assert len(clean.stored("customers", "resp-")) == 2
    # When the same values arrive spelled otherwise, with the columns in another order
    header = "tags,signup,vip,points,email,customer_id"
    respelled = [
        "x,2024-05-01T00:00:00+00:00,TRUE,1e3,a@x.com,resp-1",
        '"a,b",2024-05-01,false,2.5,b@x.com,resp-2',
    ]
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/respell-2.csv", _csv(respelled, header), **SYNC)
    # Then nothing is posted
    assert _posted_rows(clean, mark, "resp-") == []
    report = clean.report("incoming/customers/sync/respell-2.csv")
    assert report["counts"]["unchanged"] == 2 and report["counts"]["posted"] == 0


def test_a_file_with_some_changes_posts_exactly_those_rows(clean: Harness) -> None:
    # Given 500 customers loaded
    n = 500
    clean.drop("incoming/customers/sync/delta-1.csv", customers_csv(n, prefix="delta-"), **SYNC)
    # When the next export changes 2% of them, adds 1% new ones and has 3 bad rows
    changed = set(range(0, n, 50))  # 10 rows
    rows = [
        _row(f"delta-{i}", i, points=i + 1000 if i in changed else None, vip="true" if i % 2 else "no")
        for i in range(n)
    ]
    rows += [_row(f"delta-new-{i}", i) for i in range(5)]
    rows += ["delta-bad-1,x@x.com,12.5.1,true,,", "delta-bad-2,y@x.com,1,perhaps,,", ",z@x.com,1,true,,"]
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/delta-2.csv", _csv(rows), **SYNC)
    # Then exactly the changed and the new rows are posted, in one POST (the POSTs follow the
    # changes: the kept rows of a lookup group are batched again), and the counts add up
    assert len(clean.data_posts("customers")) == 1
    posted = _posted_rows(clean, mark, "delta-")
    assert sorted(r["customer_id"] for r in posted) == sorted(
        [f"delta-{i}" for i in changed] + [f"delta-new-{i}" for i in range(5)]
    )
    report = clean.report("incoming/customers/sync/delta-2.csv")
    assert report["counts"] == {"read": 508, "posted": 15, "rejected": 3, "parked": 0, "unchanged": 500 - 10}
    assert report["sync"] == {"mode": "changes", "new": 5, "changed": 10, "unchanged": 490, "superseded": 0}
    stored = {r["customer_id"]: r for r in clean.stored("customers", "delta-")}
    assert stored["delta-50"]["points"] == 1050


def test_a_key_twice_in_one_file_ends_with_its_last_row_stored_and_in_the_ledger(clean: Harness) -> None:
    # Given a file in batches of 1 (lookup groups of 40 rows) where one record appears in the first
    # group and again in the third, and another twice within one group
    rows = [_row("dup-a", 1, points=1)] + [_row(f"dup-f{i}", i) for i in range(90)]
    rows += [_row("dup-b", 2, points=1), _row("dup-b", 2, points=2)] + [
        _row(f"dup-g{i}", i) for i in range(3)
    ]
    rows += [_row("dup-a", 1, points=2)]
    env = {**SYNC, "BATCH_MAX_ROWS": "1"}
    # When it is loaded
    clean.drop("incoming/customers/sync/dup-1.csv", _csv(rows), **env)
    # Then Monetate holds the last row of each
    stored = {r["customer_id"]: r for r in clean.stored("customers", "dup-")}
    assert stored["dup-a"]["points"] == 2 and stored["dup-b"]["points"] == 2
    # And the ledger holds the last rows too: the last values again are unchanged, the first are not
    mark = _mark(clean)
    clean.drop(
        "incoming/customers/sync/dup-2.csv",
        _csv([_row("dup-a", 1, points=2), _row("dup-b", 2, points=2)]),
        **env,
    )
    assert _posted_rows(clean, mark, "dup-") == []
    clean.drop("incoming/customers/sync/dup-3.csv", _csv([_row("dup-a", 1, points=1)]), **env)
    assert [r["points"] for r in _posted_rows(clean, mark, "dup-")] == [1]


def test_a_record_not_posted_for_sync_full_every_days_is_posted_again(clean: Harness) -> None:
    # Given rows loaded now, with the ledger's clock injected
    now = [time.time()]
    rt = clean.runtime(**SYNC, SYNC_FULL_EVERY_DAYS="7")
    rt.deps.sync.clock = lambda: now[0]
    handler = clean.handler(rt)
    body = customers_csv(20, prefix="full-")
    clean.drop("incoming/customers/sync/full-1.csv", body, handler=handler)
    # When the same rows come 6 days later, then 7 days after the first post
    now[0] += 6 * 86_400
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/full-2.csv", body, handler=handler)
    assert _posted_rows(clean, mark, "full-") == []
    now[0] += 1 * 86_400
    clean.drop("incoming/customers/sync/full-3.csv", body, handler=handler)
    # Then the 7-day-old records are posted again although unchanged (the unchanged load on day 6
    # did not refresh their posting time)
    assert len(_posted_rows(clean, mark, "full-")) == 20
    assert clean.report("incoming/customers/sync/full-3.csv")["sync"]["changed"] == 20


def test_a_schema_without_a_unique_key_posts_everything(clean: Harness) -> None:
    # Given a dataset without a unique key
    body = visits_csv(4, visitor="nokey")
    # When the same file is loaded twice with SYNC_MODE=changes
    clean.drop("incoming/visits/sync/a.csv", body, **SYNC)
    clean.drop("incoming/visits/sync/b.csv", body, **SYNC)
    # Then every row was posted both times (each POST appends) and the report says mode all
    assert len([r for r in clean.sandbox.rows("visits") if r["visitor_id"] == "nokey"]) == 8
    report = clean.report("incoming/visits/sync/b.csv")
    assert report["sync"]["mode"] == "all" and report["counts"]["posted"] == 4


def test_sync_mode_all_posts_everything_and_reads_no_ledger(clean: Harness) -> None:
    body = customers_csv(5, prefix="allmode-")
    clean.drop("incoming/customers/sync/allmode-1.csv", body, SYNC_MODE="all")
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/allmode-2.csv", body, SYNC_MODE="all")
    assert len(_posted_rows(clean, mark, "allmode-")) == 5
    report = clean.report("incoming/customers/sync/allmode-2.csv")
    assert report["sync"] == {"mode": "all", "new": 0, "changed": 0, "unchanged": 0, "superseded": 0}
    assert report["counts"]["unchanged"] == 0


def test_a_dry_run_reports_what_would_happen_posts_nothing_and_leaves_the_ledger(clean: Harness) -> None:
    # Given 10 rows loaded
    clean.drop("incoming/customers/sync/dry-1.csv", customers_csv(10, prefix="dry-"), **SYNC)
    rows = [
        _row(f"dry-{i}", i, points=99 if i < 2 else None, vip="true" if i % 2 else "no") for i in range(10)
    ]
    rows.append(_row("dry-new", 0))
    body = _csv(rows)
    # When a dry run sees 2 changed, 1 new and 8 unchanged rows
    mark = _mark(clean)
    clean.drop("dry-run/customers/sync/dry-2.csv", body, **SYNC)
    # Then it reports exactly that and posts nothing
    assert _posted_rows(clean, mark, "dry-") == []
    report = clean.report("dry-run/customers/sync/dry-2.csv")
    assert report["dry_run"] is True
    assert report["counts"] == {"read": 11, "posted": 3, "rejected": 0, "parked": 0, "unchanged": 8}
    assert report["sync"] == {"mode": "changes", "new": 1, "changed": 2, "unchanged": 8, "superseded": 0}
    # And the ledger is untouched: the real run still posts the same 3 rows
    clean.drop("incoming/customers/sync/dry-3.csv", body, **SYNC)
    assert sorted(r["customer_id"] for r in _posted_rows(clean, mark, "dry-")) == [
        "dry-0",
        "dry-1",
        "dry-new",
    ]


class _CrashingLedger:
    """The ledger of a function that dies between Monetate's 201 and the ledger write, once."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self.crashes = 1

    def lookup(self, key_ids: Any) -> Any:
        return self.ledger.lookup(key_ids)

    def record(self, entries: Any, full_every_days: int) -> Any:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("the function died here")
        return self.ledger.record(entries, full_every_days)


def test_a_crash_between_the_post_and_the_ledger_write_loses_nothing(clean: Harness) -> None:
    # Given a function that dies right after Monetate stored the first batch
    rt = clean.runtime(**{**SYNC, "BATCH_MAX_ROWS": "5", "POST_CONCURRENCY": "1"})
    rt.deps.sync.ledger = _CrashingLedger(rt.deps.sync.ledger)
    key = "incoming/customers/sync/crash-1.csv"
    # When the file is loaded (Lambda retries the failed invocation)
    clean.drop(key, customers_csv(12, prefix="crash-"), handler=clean.handler(rt))
    # Then every row is in Monetate and the report is complete
    report = clean.report(key)
    assert report["status"] == "complete", report["errors"]
    assert len(clean.stored("customers", "crash-")) == 12
    # And the batch whose write was lost is simply posted again by the next load; the rest is not
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/crash-2.csv", customers_csv(12, prefix="crash-"), **SYNC)
    assert len(_posted_rows(clean, mark, "crash-")) <= 5
    clean.drop("incoming/customers/sync/crash-3.csv", customers_csv(12, prefix="crash-"), **SYNC)
    assert len(_posted_rows(clean, mark, "crash-")) <= 5  # the third load posted nothing more


def test_parked_rows_carry_their_files_source_time(clean: Harness) -> None:
    # Given Monetate failing every POST
    clean.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
    key = "incoming/customers/sync/park-1.csv"
    # When a file is loaded with change-only sync
    clean.drop(key, customers_csv(3, prefix="park-"), **SYNC, HTTP_MAX_RETRIES="1")
    clean.sandbox.reset()
    # Then its rows are parked, with the file's LastModified and ETag and their lines
    report = clean.report(key)
    assert report["counts"]["parked"] == 3 and report["sync"]["new"] == 3
    head = clean.stack.s3.head_object(Bucket=clean.bucket, Key=key)
    (message,) = clean.queue_messages(clean.stack.resources.records_queue_url)
    source = json.loads(message["Body"])["source"]
    assert source["time"] == head["LastModified"].timestamp()
    assert source["etag"] == head["ETag"].strip('"') and source["lines"] == [2, 3, 4]


def test_a_file_tagged_monetate_sync_all_posts_every_row_and_refreshes_the_ledger(clean: Harness) -> None:
    # Given rows already in the ledger
    v1 = customers_csv(4, prefix="forced-")
    v2 = v1.replace("@x.com", "@y.com")
    clean.drop("incoming/customers/sync/forced-1.csv", v1, **SYNC)
    mark = _mark(clean)
    # When other values arrive with the metadata monetate-sync=all
    clean.stack.s3.put_object(
        Bucket=clean.bucket,
        Key="incoming/customers/sync/forced-2.csv",
        Body=v2.encode(),
        Metadata={"monetate-sync": "all"},
    )
    clean.deliver(**SYNC)
    # Then every row is posted, the report says mode all
    assert len(_posted_rows(clean, mark, "forced-")) == 4
    report = clean.report("incoming/customers/sync/forced-2.csv")
    assert report["sync"]["mode"] == "all" and report["counts"]["posted"] == 4
    # And the ledger learnt what was posted: the first values again are a change, posted
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/forced-3.csv", v1, **SYNC)
    assert len(_posted_rows(clean, mark, "forced-")) == 4
    # And the object tag forces a full post of unchanged rows too
    mark = _mark(clean)
    clean.stack.s3.put_object(
        Bucket=clean.bucket,
        Key="incoming/customers/sync/forced-4.csv",
        Body=v1.encode(),
        Tagging="monetate-sync=all",
    )
    clean.deliver(**SYNC)
    assert len(_posted_rows(clean, mark, "forced-")) == 4
    assert clean.report("incoming/customers/sync/forced-4.csv")["sync"]["mode"] == "all"


def test_two_files_for_the_same_schema_at_once(clean: Harness) -> None:
    # Given two exports of different customers put at the same time
    handler = clean.handler(**SYNC)
    keys = ["incoming/customers/sync/both-a.csv", "incoming/customers/sync/both-b.csv"]
    clean.stack.put_file(keys[0], customers_csv(200, prefix="both-a-").encode())
    clean.stack.put_file(keys[1], customers_csv(200, prefix="both-b-").encode())
    events = []
    with clean.using(handler):
        msgs = clean.queue_messages(clean.stack.resources.s3_events_queue_url)
    events = [json.loads(m["Body"]) for m in msgs]
    events = [e for e in events if "Records" in e]
    # When IngestFile runs on both at once
    threads = [threading.Thread(target=clean.stack._invoke, args=(handler, e)) for e in events]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Then both complete, every row posted once, and a second load of both posts nothing
    for key in keys:
        report = clean.report(key)
        assert report["status"] == "complete" and report["counts"]["posted"] == 200
    mark = _mark(clean)
    for key in keys:
        clean.drop(
            key.replace(".csv", "-again.csv"),
            clean.stack.s3.get_object(Bucket=clean.bucket, Key=key)["Body"].read(),
            handler=handler,
        )
    assert _posted_rows(clean, mark, "both-") == []


@pytest.mark.parametrize("table", ["no-such-ledger-table"])
def test_a_missing_ledger_table_posts_every_row(clean: Harness, table: str, caplog: Any) -> None:
    # Given SYNC_LEDGER_TABLE naming a table that does not exist
    body = customers_csv(6, prefix="noledger-")
    # When a file is loaded twice
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/noledger-1.csv", body, **SYNC, SYNC_LEDGER_TABLE=table)
    assert len(_posted_rows(clean, mark, "noledger-")) == 6
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/noledger-2.csv", body, **SYNC, SYNC_LEDGER_TABLE=table)
    # Then it falls back to posting every row (fail open), both files complete, nothing lost
    assert len(_posted_rows(clean, mark, "noledger-")) == 6
    report = clean.report("incoming/customers/sync/noledger-2.csv")
    assert report["status"] == "complete"
    assert report["counts"]["posted"] == 6 and report["sync"]["new"] == 6
    # And the logs say the ledger failed, naming the table
    failed = [r for r in caplog.records if r.getMessage() == "sync ledger lookup failed"]
    assert failed and all(getattr(r, "table", None) == table for r in failed)


def test_the_invocations_metrics_count_unchanged_rows_and_time_the_ledger(
    clean: Harness, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given 12 rows loaded once
    body = customers_csv(12, prefix="metric-")
    clean.drop("incoming/customers/sync/metric-1.csv", body, **SYNC)
    capfd.readouterr()
    # When the same rows come again
    clean.drop("incoming/customers/sync/metric-2.csv", body, **SYNC)
    # Then the invocation's EMF line counts them unchanged and times the ledger's lookups
    lines = [json.loads(x) for x in capfd.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    (emf,) = [x for x in lines if x.get("schema") == "customers" and "RowsRead" in x]
    assert emf["RowsUnchanged"] in (12, [12]) and emf["RowsPosted"] in (0, [0])
    lookups = emf["SyncLedgerLookupLatency"]
    assert (lookups if isinstance(lookups, list) else [lookups]) and "SyncLedgerLookupFailed" not in emf
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"RowsUnchanged", "SyncLedgerLookupLatency"} <= names


def test_parked_rows_are_written_to_the_ledger_when_post_records_posts_them(clean: Harness) -> None:
    # Given a file whose rows were parked while Monetate failed every POST
    clean.sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
    body = customers_csv(6, prefix="parkpost-")
    clean.drop("incoming/customers/sync/parkpost-1.csv", body, **SYNC, HTTP_MAX_RETRIES="1")
    clean.sandbox.faults = FaultConfig()
    assert clean.report("incoming/customers/sync/parkpost-1.csv")["counts"]["parked"] == 6
    # When PostRecords (change-only sync on) drains the records queue
    with patched_environ(SYNC):
        handler = make_post_records_handler()
        poller = SqsPoller(clean.stack.sqs, clean.stack.resources.records_queue_url, handler)
        poller.drain(max_seconds=30)
    # Then the rows are in Monetate, and in the ledger: the same file again posts nothing
    assert len(clean.stored("customers", "parkpost-")) == 6
    mark = _mark(clean)
    clean.drop("incoming/customers/sync/parkpost-2.csv", body, **SYNC)
    assert _posted_rows(clean, mark, "parkpost-") == []
    assert clean.report("incoming/customers/sync/parkpost-2.csv")["counts"]["unchanged"] == 6
