"""`make bench`: run every benchmark, print one table, write it to bench/results/latest.json.

Figures, not assertions: quote them as ratios against the baseline measured in the same run.
    python -m bench [--quick]    (--quick: 100,000 rows instead of 1,000,000 for the ingest and
                                  sync-load figures)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import (
    bench_budget,
    bench_client,
    bench_import,
    bench_ingest,
    bench_post_records,
    bench_sync,
    bench_sync_load,
)
from bench.table import print_table


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.platform(terse=True),
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="smaller ingest and sync-load runs (100k rows)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for name, fn in (
        ("ingest", lambda: bench_ingest.run(rows=100_000 if args.quick else 1_000_000)),
        ("post_records", bench_post_records.run),
        ("sync", lambda: bench_sync.run(keys=2_000 if args.quick else bench_sync.KEYS)),
        ("sync_load", lambda: bench_sync_load.run(rows=100_000 if args.quick else 1_000_000)),
        ("client", bench_client.run),
        ("import", bench_import.run),
        ("budget", bench_budget.run),
    ):
        started = time.perf_counter()
        part = fn()
        print(f"[{name}: {time.perf_counter() - started:.0f} s]", flush=True)
        rows.extend(part)
    print()
    print_table(rows)
    out = Path("bench/results/latest.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
