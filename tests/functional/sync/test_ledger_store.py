"""The ledger table in moto, provisioned as the template does: round trips and conditional writes."""

from __future__ import annotations

from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.entries import LedgerEntry, SourceTime

from local.aws import LocalResources, MotoServer

DAY = 86_400


def entry(key: str, fp: int, time: float, origin: str = "etag", line: int = 2) -> LedgerEntry:
    return LedgerEntry(key, bytes([fp]) * 16, time + 60, SourceTime(time, origin, line))


def test_a_missing_table_fails_open(moto: MotoServer, resources: LocalResources) -> None:
    # Given a ledger pointed at a table that does not exist
    led = DynamoLedger("no-such-table", client=moto.client("dynamodb"))
    # Then lookups report every key unknown (rows are posted) and writes are counted failed
    assert led.lookup(["a.b", "a.c"]).failed == 2
    assert led.record([entry("a.b", 1, 1000.0)], 7).failed == 1


def test_entries_round_trip_with_their_ttl(moto: MotoServer, resources: LocalResources) -> None:
    ddb = moto.client("dynamodb")
    led = DynamoLedger(resources.ledger_table, client=ddb)
    entries = [entry(f"s.k{i}", i, 1_714_600_000.0, line=i + 2) for i in range(230)]
    assert led.record(entries, 7).written == 230
    found = led.lookup([e.key_id for e in entries] + ["s.unknown"])
    assert found.failed == 0 and found.entries == {e.key_id: e for e in entries}
    item = ddb.get_item(TableName=resources.ledger_table, Key={"id": {"S": "s.k0"}})["Item"]
    assert int(item["expiration"]["N"]) == int(1_714_600_060 + 9 * DAY)


def test_an_older_write_never_replaces_a_newer_entry(moto: MotoServer, resources: LocalResources) -> None:
    led = DynamoLedger(resources.ledger_table, client=moto.client("dynamodb"))
    # Given Tuesday's row recorded
    assert led.record([entry("s.k", 2, 2000.0, "tue")], 7).written == 1
    # When Monday's row (a late parked batch) and an earlier line of Tuesday's file are recorded
    outcome = led.record([entry("s.k", 1, 1000.0, "mon")], 7)
    earlier_line = led.record([entry("s.k", 3, 2000.0, "tue", line=1)], 7)
    # Then the ledger still holds Tuesday's row
    assert (outcome.kept_newer, earlier_line.kept_newer) == (1, 1)
    assert led.lookup(["s.k"]).entries["s.k"].fingerprint == bytes([2]) * 16
    # And a newer file, or another file of the same second, does replace it
    assert led.record([entry("s.k", 4, 2000.0, "other", line=1)], 7).written == 1
    assert led.record([entry("s.k", 5, 3000.0, "wed")], 7).written == 1
    assert led.lookup(["s.k"]).entries["s.k"].fingerprint == bytes([5]) * 16
