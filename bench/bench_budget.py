"""IngestFile's hand-over point: the share of an invocation's budget spent posting.

The policy of ``ingest/budget.py`` driven by a virtual clock (no waiting), one POST at a time,
against a latency model of the sandbox's faults: 0.2 s per 500-row POST (2,500 rows/s) with 5% of
POSTs slowed by 2 s. Baseline: the fixed 60-second margin the project had before (stop taking
batches when less than ``DEADLINE_MARGIN_SECONDS`` is left). The functional test
``tests/functional/ingest_file/test_ingest_budget.py`` runs the real handler at 10/30/120 s.
"""

from __future__ import annotations

import random
from typing import Any

from monetate_ingest.ingest.budget import Budget

BUDGETS = (10.0, 60.0, 900.0)
MARGIN = 60.0


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _latency(rng: random.Random) -> float:
    return 0.2 + (2.0 if rng.random() < 0.05 else 0.0)


def share_posting(total: float, *, fixed_margin: float | None = None, seed: int = 1) -> tuple[float, float]:
    """(share of the budget spent posting, seconds left when the invocation returns)."""
    clock, rng = _Clock(), random.Random(seed)
    budget = Budget(lambda: int((total - clock.now) * 1000), margin_ceiling=MARGIN, clock=clock)
    posting = 0.0
    while True:
        left = total - clock.now
        stop = left < fixed_margin if fixed_margin is not None else budget.out_of_time()
        if stop:
            break
        seconds = _latency(rng)
        deadline = budget.post_deadline()
        if deadline is not None and clock.now + seconds > deadline:  # left for the next invocation
            clock.now = deadline
            break
        clock.now += seconds
        posting += seconds
        budget.observe(seconds)
    clock.now += 0.3  # checkpoint, report, continuation
    return posting / total, total - clock.now


def run() -> list[dict[str, Any]]:
    rows = []
    for total in BUDGETS:
        ours, left = share_posting(total)
        base, _ = share_posting(total, fixed_margin=MARGIN)
        rows.append(
            {
                "figure": f"share of a {total:g} s invocation spent posting (vs fixed 60 s margin)",
                "ours": round(ours, 3),
                "baseline": round(base, 3),
                "unit": "share",
                "ratio": round(ours / base, 2) if base else "inf",
            }
        )
        rows.append(
            {
                "figure": f"seconds left when a {total:g} s invocation returns",
                "ours": round(left, 2),
                "baseline": "",
                "unit": "s",
                "ratio": "",
            }
        )
    return rows


if __name__ == "__main__":
    from bench.table import print_table

    print_table(run())
