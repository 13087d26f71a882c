"""The layer's client against the sandbox: rows/s by batch size and concurrency; token mints and
secret reads per 1,000 client calls.

The sandbox runs with ``validate_rows = False`` so that it is not what is measured; moto runs as a
subprocess so that it does not share this interpreter's GIL. Baseline for throughput: batch 100 at
concurrency 1 (the naive loop). Expected mints and reads per 1,000 calls: 1 and 1.

    python -m bench.bench_client
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from local.samples import CUSTOMER_FIELDS
from local.stack import LocalStack

SCHEMA = "bench_customers"
FIELDS = CUSTOMER_FIELDS
ROWS = 100_000


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "customer_id": f"c{i}",
            "email": f"u{i}@example.com",
            "points": i,
            "vip": i % 2 == 0,
            "signup": "2024-05-01T10:00:00Z",
            "tags": "a,b",
        }
        for i in range(n)
    ]


def _rate(client: Any, rows: list[dict[str, Any]], batch: int, concurrency: int) -> float:
    chunks = [rows[i : i + batch] for i in range(0, len(rows), batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(lambda c: client.post_rows(SCHEMA, c), chunks))
    return len(rows) / (time.perf_counter() - start)


def _cpu_per_post(client: Any, rows: list[dict[str, Any]], batch: int = 500) -> float:
    """Milliseconds of this thread's CPU per POST of ``batch`` rows (bodies encoded beforehand)."""
    from monetate_ingest.delivery.batching import body_of
    from monetate_ingest.formats.encoding import encode_row

    bodies = [
        body_of([encode_row(r).encode() for r in rows[i : i + batch]]) for i in range(0, len(rows), batch)
    ]
    started = time.thread_time()
    for body in bodies:
        client.post_body(SCHEMA, body)
    return (time.thread_time() - started) / len(bodies) * 1000


def run() -> list[dict[str, Any]]:
    from monetate_ingest.monetate.factory import build_client
    from monetate_ingest.settings import monetate_from_env

    out: list[dict[str, Any]] = []
    quiet = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
    with LocalStack(moto_subprocess=True, env_overrides=quiet) as stack:
        stack.sandbox.add_schema({"name": SCHEMA, "type": "attribute", "fields": FIELDS})
        stack.sandbox.validate_rows = False
        client = build_client(monetate_from_env())
        rows = _rows(ROWS)
        client.post_rows(SCHEMA, rows[:10])  # warm up: token, connections
        baseline = _rate(client, rows, 100, 1)
        for batch in (100, 500, 1000):
            for conc in (1, 4, 8):
                rate = baseline if (batch, conc) == (100, 1) else _rate(client, rows, batch, conc)
                out.append(
                    {
                        "figure": f"client rows/s, batch {batch}, concurrency {conc}",
                        "ours": round(rate),
                        "baseline": round(baseline),
                        "unit": "rows/s",
                        "ratio": round(rate / baseline, 2),
                    }
                )
        # CPU per data POST: the direct path (the session's urllib3 pool) vs Session.request.
        plain = build_client(monetate_from_env())
        plain.direct = None
        plain.post_rows(SCHEMA, rows[:10])
        direct_ms = min(_cpu_per_post(client, rows) for _ in range(3))
        plain_ms = min(_cpu_per_post(plain, rows) for _ in range(3))
        out.append(
            {
                "figure": "client CPU per 500-row POST, direct path vs Session.request",
                "ours": round(direct_ms, 3),
                "baseline": round(plain_ms, 3),
                "unit": "ms",
                "ratio": round(direct_ms / plain_ms, 2),
            }
        )
        # Token mints and secret reads per 1,000 calls, on a fresh client.
        fresh = build_client(monetate_from_env())
        for i in range(1000):
            fresh.post_rows(SCHEMA, rows[i : i + 1])
        out.append(
            {
                "figure": "token mints per 1,000 client calls",
                "ours": fresh.tokens.mints,
                "baseline": 1000,
                "unit": "mints",
                "ratio": round(fresh.tokens.mints / 1000, 4),
            }
        )
        out.append(
            {
                "figure": "secret reads per 1,000 client calls",
                "ours": fresh.credentials.reads,
                "baseline": 1000,
                "unit": "reads",
                "ratio": round(fresh.credentials.reads / 1000, 4),
            }
        )
    return out


if __name__ == "__main__":
    from bench.table import print_table

    print_table(run())
