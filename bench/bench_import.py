"""Handler import time versus ``import boto3`` alone (a cold-start proxy), each in a fresh
interpreter, median of several runs. The budget (docs/ARCHITECTURE.md "Package"): at most 2.5 times
``import boto3``.

    python -m bench.bench_import
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from typing import Any

RUNS = 7
HANDLERS = ("functions.ingest_file.app", "functions.post_records.app", "functions.validate_record.app")
SNIPPET = "import time; t=time.perf_counter(); import {mod}; print(time.perf_counter()-t)"


def _median(module: str) -> float:
    times = []
    for _ in range(RUNS):
        out = subprocess.run(
            [sys.executable, "-c", SNIPPET.format(mod=module)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": "layers/monetate_ingest:.", "PATH": "/usr/bin:/bin"},
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def run() -> list[dict[str, Any]]:
    base = _median("boto3")
    rows = []
    for mod in HANDLERS:
        t = _median(mod)
        rows.append(
            {
                "figure": f"import {mod.split('.')[1]} handler (vs import boto3)",
                "ours": round(t * 1000, 1),
                "baseline": round(base * 1000, 1),
                "unit": "ms",
                "ratio": round(t / base, 2),
            }
        )
    return rows


if __name__ == "__main__":
    from bench.table import print_table

    print_table(run())
