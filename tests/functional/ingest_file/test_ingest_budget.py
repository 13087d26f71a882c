"""Continuation at any function timeout: the hand-over point comes from the invocation's budget.

``visits`` has no unique key, so a row posted twice is stored twice: the test counts them.
"""

from __future__ import annotations

from collections import Counter

import pytest

from local.sandbox.faults import FaultConfig
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import Harness, visits_csv

harness = conftest_ingest.harness
clean = conftest_ingest.clean

ROWS = 50_000


@pytest.mark.slow
@pytest.mark.parametrize(("budget", "at_most"), [(10.0, 4), (30.0, 1), (120.0, 1)])
def test_a_file_continues_in_few_invocations_at_any_timeout(
    clean: Harness, budget: float, at_most: int
) -> None:
    # Given Monetate accepting 2,500 rows/s (0.2 s per 500-row POST, one in flight) and a function
    # timeout of ``budget`` seconds with the default 60 s margin
    clean.stack.function_timeout = budget
    clean.sandbox.faults = FaultConfig(latency=0.2, apply_to="post")
    key = f"incoming/visits/budget/{int(budget)}.csv"
    before = len(clean.stack.invocations)
    try:
        # When a 50,000-row file lands (20 s of posting)
        results = clean.drop(key, visits_csv(ROWS, visitor=f"b{int(budget)}"), POST_CONCURRENCY="1")
    finally:
        clean.stack.function_timeout = 900.0
    # Then it completes in few invocations, each returning at least 1 s before its deadline
    invocations = clean.stack.invocations[before:]
    assert len(results) <= at_most, [i.get("remaining_ms") for i in invocations]
    assert all("error" not in i["result"] for i in invocations)
    assert min(i["remaining_ms"] for i in invocations) >= 1000
    report = clean.report(key)
    assert report["status"] == "complete" and report["counts"]["posted"] == ROWS
    # and at most 5% of the rows were posted twice (a POST cut short by the deadline)
    seqs = Counter(
        int(r["seq"]) for r in clean.sandbox.rows("visits") if r["visitor_id"] == f"b{int(budget)}"
    )
    assert set(seqs) == set(range(ROWS))
    assert sum(c - 1 for c in seqs.values()) <= 0.05 * ROWS
