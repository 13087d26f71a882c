"""The operator's status and forget on the ledger table in moto (provisioned as the template does):
scans over many pages, one schema's entries only, a missing table failing clearly."""

from __future__ import annotations

from typing import Any

import pytest
from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.dynamo_admin import LedgerAdminError
from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.fingerprint import LedgerHasher

from local.aws import LocalResources, MotoServer

SECRET = b"k" * 32
CUSTOMERS = LedgerHasher(SECRET, "acme", "production", "customers")
ORDERS = LedgerHasher(SECRET, "acme", "production", "orders")
STAGING = LedgerHasher(SECRET, "acme", "staging", "customers")


class CountingScans:
    """A boto3 DynamoDB client that counts its Scan calls (the pages)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.scans = 0

    def scan(self, **kw: Any) -> Any:
        self.scans += 1
        return self.client.scan(**kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def entries(hasher: LedgerHasher, count: int, first_post: float) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            hasher.key_id(f"c{i}"), bytes([i % 256]) * 16, first_post + i, SourceTime(first_post, "e", i)
        )
        for i in range(count)
    ]


def test_status_counts_one_schema_over_many_scan_pages(moto: MotoServer, resources: LocalResources) -> None:
    # Given 70 entries of customers, 40 of orders and 15 of customers in another environment
    client = CountingScans(moto.client("dynamodb"))
    led = DynamoLedger(resources.ledger_table, client=client, scan_page=9)
    for hasher, count, first in ((CUSTOMERS, 70, 1_714_600_000.0), (ORDERS, 40, 1.0), (STAGING, 15, 2.0)):
        assert led.record(entries(hasher, count, first), 7).written == count
    # When the status of customers is read, 9 items per scan page (125 items: 14 pages)
    found = led.status(CUSTOMERS.scope)
    # Then every page was read and only its entries count, with their oldest and newest post
    assert client.scans == 14
    assert (found.records, found.oldest_post, found.newest_post) == (70, 1_714_600_000.0, 1_714_600_069.0)
    assert led.status(ORDERS.scope).records == 40
    assert led.status(LedgerHasher(SECRET, "acme", "production", "nothing").scope).records == 0


def test_forget_drops_one_schema_and_leaves_the_others(moto: MotoServer, resources: LocalResources) -> None:
    # Given 80 entries of customers (more than 3 delete batches) beside orders and staging's
    ddb = moto.client("dynamodb")
    led = DynamoLedger(resources.ledger_table, client=ddb, scan_page=11)
    kept = entries(ORDERS, 30, 1.0) + entries(STAGING, 12, 2.0)
    led.record(entries(CUSTOMERS, 80, 1000.0) + kept, 7)
    # When customers is forgotten, 11 items per scan page
    dropped = led.forget(CUSTOMERS.scope)
    # Then its 80 entries are gone, the others are untouched and still found
    assert dropped == 80
    assert led.status(CUSTOMERS.scope).records == 0
    assert led.lookup([e.key_id for e in kept]).entries == {e.key_id: e for e in kept}
    assert ddb.scan(TableName=resources.ledger_table, Select="COUNT")["Count"] == len(kept)
    # And forgetting again drops nothing
    assert led.forget(CUSTOMERS.scope) == 0


def test_a_missing_table_fails_clearly_naming_it(moto: MotoServer, resources: LocalResources) -> None:
    # Given a ledger pointed at a table that does not exist
    led = DynamoLedger("no-such-ledger", client=moto.client("dynamodb"))
    # When status or forget runs / Then the error names the table, the variable and the AWS code
    for call in (led.status, led.forget):
        with pytest.raises(LedgerAdminError) as failed:
            call(CUSTOMERS.scope)
        assert str(failed.value).startswith(
            "the sync ledger table 'no-such-ledger' (SYNC_LEDGER_TABLE) could not be scanned: "
            "ResourceNotFoundException (no such table"
        )
        assert (failed.value.table, failed.value.code) == ("no-such-ledger", "ResourceNotFoundException")
