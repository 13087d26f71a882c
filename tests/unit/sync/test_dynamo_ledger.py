"""The DynamoDB ledger's limits and failures, against a fake client (moto can't inject these)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError
from monetate_ingest.sync.dynamo import DynamoLedger, to_item
from monetate_ingest.sync.entries import LedgerEntry, SourceTime

T = "ledger"


class FakeDynamo:
    """Holds items; hands back some keys unprocessed, or fails every call."""

    def __init__(self, *, unprocessed_rounds: int = 0, fail: Exception | None = None) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[list[str]] = []
        self.unprocessed_rounds = unprocessed_rounds
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
