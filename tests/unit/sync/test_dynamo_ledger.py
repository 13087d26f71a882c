"""The DynamoDB ledger's limits and failures, against a fake client (moto can't inject these)."""

from __future__ import annotations

import bisect
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from monetate_ingest.sync.dynamo import DynamoLedger, to_item
from monetate_ingest.sync.dynamo_admin import LedgerAdminError
from monetate_ingest.sync.entries import LedgerEntry, SourceTime

T = "ledger"


class FakeDynamo:
    """Holds items; hands back some keys unprocessed, or fails every call."""

    def __init__(
        self, *, unprocessed_rounds: int = 0, fail: Exception | None = None, unprocessed_writes: int = 0
    ) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[list[str]] = []
        self.writes: list[list[str]] = []
        self.unprocessed_rounds = unprocessed_rounds
        self.unprocessed_writes = unprocessed_writes
        self.fail = fail

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise self.fail
        keys = [k["id"]["S"] for k in RequestItems[T]["Keys"]]
        self.calls.append(keys)
        if self.unprocessed_rounds:
            self.unprocessed_rounds -= 1
            half = keys[len(keys) // 2 :]
            served = keys[: len(keys) // 2]
            return {
                "Responses": {T: [self.items[k] for k in served if k in self.items]},
                "UnprocessedKeys": {T: {**RequestItems[T], "Keys": [{"id": {"S": k}} for k in half]}},
            }
        return {"Responses": {T: [self.items[k] for k in keys if k in self.items]}, "UnprocessedKeys": {}}

    def put_item(self, **kw: Any) -> None:
        if self.fail:
            raise self.fail
        self.items[kw["Item"]["id"]["S"]] = kw["Item"]

    def scan(self, **kw: Any) -> dict[str, Any]:
        """One page of ``Limit`` items (default all) from ``ExclusiveStartKey``, filtered by prefix."""
        if self.fail:
            raise self.fail
        prefix = kw["ExpressionAttributeValues"][":scope"]["S"]
        ids = sorted(self.items)
        start = (
            bisect.bisect_right(ids, kw["ExclusiveStartKey"]["id"]["S"]) if "ExclusiveStartKey" in kw else 0
        )
        page = ids[start : start + kw.get("Limit", len(ids))]
        answer: dict[str, Any] = {
            "Items": [{"id": {"S": k}, "pa": self.items[k]["pa"]} for k in page if k.startswith(prefix)]
        }
        if page and start + len(page) < len(ids):
            answer["LastEvaluatedKey"] = {"id": {"S": page[-1]}}
        return answer

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        """Deletes; hands back the second half unprocessed while ``unprocessed_writes`` lasts."""
        keys = [r["DeleteRequest"]["Key"]["id"]["S"] for r in RequestItems[T]]
        self.writes.append(keys)
        done, left = keys, []
        if self.unprocessed_writes:
            self.unprocessed_writes -= 1
            done, left = keys[: len(keys) // 2], keys[len(keys) // 2 :]
        for k in done:
            self.items.pop(k, None)
        unprocessed = {T: [{"DeleteRequest": {"Key": {"id": {"S": k}}}} for k in left]} if left else {}
        return {"UnprocessedItems": unprocessed}


def entry(i: int) -> LedgerEntry:
    return LedgerEntry(f"scope.k{i}", bytes([i % 256]) * 16, 1000.0, SourceTime(900.0, "etag", i))


def ledger(fake: FakeDynamo, **kw: Any) -> DynamoLedger:
    return DynamoLedger(T, client=fake, workers=2, sleep=lambda _s: None, **kw)


def test_a_failing_table_fails_open_for_reads_and_counts_failed_writes() -> None:
    # Given the table is missing
    missing = ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "BatchGetItem")
    led = ledger(FakeDynamo(fail=missing))
    # When keys are looked up and entries written
    found = led.lookup([f"scope.k{i}" for i in range(150)])
    written = led.record([entry(1), entry(2)], 7)
    # Then nothing raises: every key is unknown (its row is posted) and every write is counted failed
    assert found.entries == {} and found.failed == 150
    assert (written.written, written.failed) == (0, 2)


def test_a_network_failure_fails_open_too() -> None:
    led = ledger(FakeDynamo(fail=EndpointConnectionError(endpoint_url="http://127.0.0.1:9")))
    assert led.lookup(["scope.k1"]).failed == 1
    assert led.record([entry(1)], 7).failed == 1


def test_keys_left_unprocessed_past_the_bound_are_unknown() -> None:
    fake = FakeDynamo(unprocessed_rounds=100)
    led = ledger(fake, max_attempts=3)
    for i in range(8):
        fake.items[f"scope.k{i}"] = to_item(entry(i), 7)
    found = led.lookup([f"scope.k{i}" for i in range(8)])
    assert len(fake.calls) == 3
    assert len(found.entries) + found.failed == 8 and found.failed == 1


def test_lookups_respect_dynamodb_limits_and_retry_unprocessed_keys() -> None:
    # Given 250 stored entries, and a table that hands back half of each request unprocessed once
    fake = FakeDynamo(unprocessed_rounds=1)
    led = ledger(fake)
    for i in range(250):
        fake.items[f"scope.k{i}"] = to_item(entry(i), 7)
    # When 300 keys are looked up, each twice
    keys = [f"scope.k{i}" for i in range(300)] * 2
    found = led.lookup(keys)
    # Then every call had at most 100 distinct keys, and every stored entry was found
    assert all(len(c) <= 100 and len(set(c)) == len(c) for c in fake.calls)
    assert found.failed == 0 and len(found.entries) == 250
    assert found.entries["scope.k7"] == entry(7)


# --- the operator's status and forget -------------------------------------------------------------


def stored(fake: FakeDynamo, scope: str, count: int, posted_at: float = 1000.0) -> None:
    for i in range(count):
        e = LedgerEntry(f"{scope}.k{i:04d}", b"f" * 16, posted_at + i, SourceTime(900.0, "etag", i))
        fake.items[e.key_id] = to_item(e, 7)


def test_forget_deletes_in_batches_of_25_and_retries_unprocessed_deletes() -> None:
    # Given 60 entries of one schema, 5 of another, and a table that leaves half a batch unprocessed twice
    fake = FakeDynamo(unprocessed_writes=2)
    stored(fake, "mine", 60)
    stored(fake, "other", 5)
    sleeps: list[float] = []
    led = DynamoLedger(T, client=fake, sleep=sleeps.append, scan_page=7)
    # When the schema is forgotten
    dropped = led.forget("mine")
    # Then all 60 are gone in calls of at most 25 distinct keys, the other schema's 5 are kept
    assert dropped == 60
    assert sorted(fake.items) == [f"other.k{i:04d}" for i in range(5)]
    assert all(0 < len(keys) <= 25 and len(set(keys)) == len(keys) for keys in fake.writes)
    # And each unprocessed half was retried after a (bounded, jittered) pause
    assert len(sleeps) == 2 and all(0 <= s <= 2.0 for s in sleeps)


def test_forget_gives_up_after_the_bound_and_says_how_many_were_dropped() -> None:
    # Given a table that never finishes a batch
    fake = FakeDynamo(unprocessed_writes=1_000)
    stored(fake, "mine", 10)
    led = DynamoLedger(T, client=fake, sleep=lambda _s: None, max_attempts=3)
    # When the schema is forgotten / Then it fails clearly, naming the table and what was done
    with pytest.raises(LedgerAdminError) as failed:
        led.forget("mine")
    assert len(fake.writes) == 3
    message = str(failed.value)
    assert f"{T!r} (SYNC_LEDGER_TABLE)" in message and "UnprocessedItems" in message
    # (halves of 10, 5 and 3 were processed: 5 + 2 + 1)
    assert "2 deletes still unprocessed after 3 attempts" in message
    assert "8 entries were dropped so far" in message and failed.value.code == "UnprocessedItems"


def test_status_counts_one_scope_over_every_scan_page() -> None:
    # Given 30 entries of one schema posted at 1000..1029 s and 12 of another, scanned 4 items a page
    fake = FakeDynamo()
    stored(fake, "mine", 30)
    stored(fake, "other", 12, posted_at=5.0)
    led = DynamoLedger(T, client=fake, scan_page=4)
    # When its status is read / Then every page counted, only that scope's
    found = led.status("mine")
    assert (found.records, found.oldest_post, found.newest_post) == (30, 1000.0, 1029.0)
    assert led.status("nobody").records == 0 and led.status("nobody").oldest_post is None


@pytest.mark.parametrize(
    ("error", "code", "hint"),
    [
        (ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "no"}}, "Scan"),
         "ResourceNotFoundException", "no such table"),
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not you"}}, "Scan"),
         "AccessDeniedException", "operator's IAM"),
        (NoCredentialsError(), "NoCredentialsError", "no AWS credentials"),
    ],
)  # fmt: skip
def test_status_and_forget_raise_naming_the_table_and_the_aws_code(
    error: Exception, code: str, hint: str
) -> None:
    # Given a table the operator cannot reach (unlike lookups and writes, these must not fail open)
    led = ledger(FakeDynamo(fail=error))
    for call in (led.status, led.forget):
        # When status or forget runs / Then one clear error names the table, the variable and the code
        with pytest.raises(LedgerAdminError) as failed:
            call("mine")
        message = str(failed.value)
        assert message.startswith(
            f"the sync ledger table {T!r} (SYNC_LEDGER_TABLE) could not be scanned: {code}"
        )
        assert hint in message and failed.value.code == code and failed.value.table == T
