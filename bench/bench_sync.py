"""Change-only sync's ledger: reads and writes per million keys, capacity units, bytes per key.

Against moto (a subprocess), scaled down to ``KEYS`` keys and extrapolated linearly to a million:
moto answers one call at a time in a few ms, so the times are an upper bound for the local stack
and say little about DynamoDB's own latency; the call counts and capacity units are exact.
Three ways of writing the entries, since an older write must never replace a newer one:

* per-item conditional ``PutItem`` in a pool of 16 (what ``sync.dynamo`` does);
* ``BatchWriteItem`` of 25 (no condition possible: the floor any grouped write could reach);
* a compact snapshot under ``state/`` in S3 (one object, ~40 bytes per key, held in memory).

Capacity: an item under 1 KB costs 1 WRU per write and 1 RRU per strongly consistent read, on
demand at $0.625 per million WRU and $0.125 per million RRU (us-east-1, 2025 prices).

    python -m bench.bench_sync
"""

from __future__ import annotations

import os
import struct
import time
import tracemalloc
from typing import Any

from monetate_ingest.sync.dynamo import DynamoLedger, to_item
from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.fingerprint import LedgerHasher

from local.aws import MotoServer, provision

KEYS = int(os.environ.get("BENCH_SYNC_KEYS", "10000"))
MILLION = 1_000_000
WRU_PRICE = 0.625 / MILLION
RRU_PRICE = 0.125 / MILLION


def _entries(n: int) -> list[LedgerEntry]:
    hasher = LedgerHasher(b"b" * 32, "acme", "production", "customers")
    source = SourceTime(1_714_600_000.0, '"0123456789abcdef0123456789abcdef"', 0)
    return [
        LedgerEntry(
            hasher.key_id(f"c{i}@x.io"),
            hasher.fingerprint({"k": i}),
            1_714_600_060.0,
            SourceTime(source.time, source.origin, i + 2),
        )
        for i in range(n)
    ]


def _per_million(seconds: float, n: int) -> str:
    return f"{seconds * MILLION / n:,.0f}"


def _row(figure: str, ours: Any, unit: str, baseline: Any = "", ratio: str = "") -> dict[str, Any]:
    return {"figure": figure, "ours": ours, "baseline": baseline, "unit": unit, "ratio": ratio}


def _bytes_per_entry(n: int) -> float:
    """Python heap per entry held in a dict by key (what a lookup window holds)."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    held = {e.key_id: e for e in _entries(n)}
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(held) == n
    return (after - before) / n


def _snapshot(entries: list[LedgerEntry]) -> bytes:
    """The compact snapshot: 16-byte key hash, 16-byte fingerprint, posted and source time, line."""
    import base64

    pack = struct.Struct("<16s16sIIQ").pack
    return b"".join(
        pack(
            base64.urlsafe_b64decode(e.key_id.split(".")[1] + "=="),
            e.fingerprint,
            int(e.posted_at),
            int(e.source.time),
            e.source.line,
        )
        for e in entries
    )


def run(keys: int = KEYS) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    entries = _entries(keys)
    with MotoServer(subprocess=True) as moto:
        res = provision(moto, secret_value="{}")
        ddb, s3 = moto.client("dynamodb"), moto.client("s3")
        ledger = DynamoLedger(res.ledger_table, client=ddb, workers=16)

        started = time.perf_counter()
        outcome = ledger.record(entries, 7)
        put_s = time.perf_counter() - started
        assert outcome.written == keys, outcome

        started = time.perf_counter()
        found = ledger.lookup([e.key_id for e in entries])
        get_s = time.perf_counter() - started
        assert len(found.entries) == keys and found.failed == 0

        batch_table = res.table  # any table of the same layout: BatchWriteItem without conditions
        started = time.perf_counter()
        for i in range(0, keys, 25):
            chunk = entries[i : i + 25]
            ddb.batch_write_item(
                RequestItems={batch_table: [{"PutRequest": {"Item": to_item(e, 7)}} for e in chunk]}
            )
        batch_s = time.perf_counter() - started

        blob = _snapshot(entries)
        started = time.perf_counter()
        s3.put_object(Bucket=res.bucket, Key="state/sync/customers.ledger", Body=blob)
        body = s3.get_object(Bucket=res.bucket, Key="state/sync/customers.ledger")["Body"].read()
        snap_s = time.perf_counter() - started
        assert body == blob
        ledger.close()

    scale = f"{keys:,} keys on moto, x{MILLION // keys}"
    rows.append(
        _row(
            f"sync ledger writes, conditional PutItem x16 ({scale})",
            _per_million(put_s, keys),
            "s per 1M keys",
            _per_million(batch_s, keys),
            "baseline: BatchWriteItem 25, no condition",
        )
    )
    rows.append(
        _row(f"sync ledger lookups, BatchGetItem 100 ({scale})", _per_million(get_s, keys), "s per 1M keys")
    )
    rows.append(
        _row(
            "sync ledger snapshot put+get in S3",
            _per_million(snap_s, keys),
            "s per 1M keys",
            f"{len(blob) / keys:.0f} B/key",
            "one object; every key held in memory",
        )
    )
    item_bytes = sum(
        len(k) + len(v.get("S", "") or v.get("B", b"") or v.get("N", ""))
        for k, v in to_item(entries[0], 7).items()
    )
    rows.append(
        _row("sync ledger item size (DynamoDB item bytes)", item_bytes, "B/item (<1 KB: 1 WRU, 1 RRU)")
    )
    rows.append(
        _row(
            "sync full first load: writes",
            f"{MILLION:,} WRU = ${MILLION * WRU_PRICE:.3f}",
            "per 1M rows",
            "",
            f"{MILLION // 25:,} BatchWriteItem calls would cost the same WRU",
        )
    )
    reads = MILLION * RRU_PRICE
    changed = 0.03 * MILLION * WRU_PRICE
    rows.append(
        _row(
            "sync nightly load, 3% changed: reads + writes",
            f"${reads + changed:.3f}",
            "per 1M rows",
            f"{MILLION:,} RRU + {int(0.03 * MILLION):,} WRU",
            f"{MILLION // 100:,} BatchGetItem calls",
        )
    )
    rows.append(
        _row(
            "sync bytes per entry held in memory (lookup window)",
            f"{_bytes_per_entry(100_000):.0f}",
            "B/key",
            "",
            "held per window only, not per file",
        )
    )
    return rows


if __name__ == "__main__":
    from bench.table import print_table

    print_table(run())
