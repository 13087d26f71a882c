"""The file's last row wins: per-key order under concurrency, retries and parking.

``customers`` has ``customer_id`` as its unique key, so the sandbox keeps one row per customer:
the last one written. Each row carries its own line in ``points``, so the test can tell which of
a customer's rows Monetate holds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.sandbox.faults import FaultConfig
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import HEADER, Harness

harness = conftest_ingest.harness
clean = conftest_ingest.clean


def _file(keys: list[int]) -> tuple[str, dict[str, int]]:
    """A customers CSV whose row i is customer ``k{keys[i]}`` with ``points`` = its line."""
    lines = [HEADER]
    last: dict[str, int] = {}
    for i, k in enumerate(keys):
        line = i + 2
        lines.append(f"k{k},u{k}@x.com,{line},true,2024-05-01 10:00,a")
        last[f"k{k}"] = line
    return "\n".join(lines) + "\n", last


def _parked(h: Harness) -> dict[str, list[int]]:
    """Lines of the rows parked on the records queue, per customer, from the envelopes."""
    out: dict[str, list[int]] = {}
    for msg in h.queue_messages(h.stack.resources.records_queue_url, max_rounds=200):
        body = json.loads(msg["Body"])
        for row, line in zip(body["rows"], body["source"]["lines"], strict=True):
            out.setdefault(row["customer_id"], []).append(line)
    return out


def _check_last_row_wins(h: Harness, last: dict[str, int], lines_of: dict[str, list[int]]) -> None:
    stored = {r["customer_id"]: int(r["points"]) for r in h.stored("customers", "k")}
    parked = _parked(h)
    for cid, final in last.items():
        if cid not in parked:
            # every row of this customer was posted: Monetate holds the file's last one
            assert stored.get(cid) == final, (cid, stored.get(cid), lines_of[cid])
            continue
        # some row was parked: nothing after it was posted ahead of it, and every row from it on
        # waits on the queue (in file order by their lines), the last one included
        first_parked = min(parked[cid])
        assert stored.get(cid, 0) < first_parked, (cid, stored.get(cid), parked[cid])
        assert sorted(parked[cid]) == [ln for ln in lines_of[cid] if ln >= first_parked]
        assert max(parked[cid]) == final


def _lines_of(keys: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        out.setdefault(f"k{k}", []).append(i + 2)
    return out


def test_repeated_customers_far_apart_hold_their_last_row_after_retries(clean: Harness) -> None:
    # Given 3,000 rows where 50 customers appear twice, 1,100 rows apart (different batches),
    # four batches in flight, and Monetate answering 20% of POSTs with 500 (retried)
    keys = list(range(3000))
    for j in range(50):
        keys[1500 + j] = 100 + j  # row 1500+j repeats the customer of row 100+j... 1,400 apart
        keys[1200 + j] = 100 + j  # ...and 1,100 apart
    body, last = _file(keys)
    clean.sandbox.faults = FaultConfig(error_rate=0.2, latency_spikes=(0.3, 0.05), seed=7, apply_to="post")
    # When the file lands
    clean.drop("incoming/customers/order/far.csv", body, BATCH_MAX_ROWS="100", POST_CONCURRENCY="4")
    # Then every customer holds the file's last row for it, and the report is complete
    report = clean.report("incoming/customers/order/far.csv")
    assert report["status"] == "complete"
    _check_last_row_wins(clean, last, _lines_of(keys))


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    keys=st.lists(st.integers(0, 30), min_size=1, max_size=160),
    batch=st.sampled_from([1, 3, 17, 1000]),
    concurrency=st.sampled_from([1, 4, 16]),
    fault=st.sampled_from(["none", "retried", "parked"]),
    seed=st.integers(0, 1000),
)
def test_any_file_with_repeated_keys_ends_with_the_last_row_per_key(
    clean: Harness, keys: list[int], batch: int, concurrency: int, fault: str, seed: int
) -> None:
    # Given a file where customers repeat anywhere, at any batch size and concurrency, with
    # Monetate healthy, failing 20% of POSTs (retried), or failing 30% with no retries (parked)
    clean.sandbox.reset()
    clean.queue_messages(clean.stack.resources.records_queue_url, max_rounds=200)
    env: dict[str, Any] = {"BATCH_MAX_ROWS": str(batch), "POST_CONCURRENCY": str(concurrency)}
    faults = {"none": {}, "retried": {"error_rate": 0.2}, "parked": {"error_rate": 0.3}}[fault]
    if fault == "parked":
        env["HTTP_MAX_RETRIES"] = "0"
    clean.sandbox.faults = FaultConfig(**faults, latency_spikes=(0.2, 0.01), seed=seed, apply_to="post")
    body, last = _file(keys)
    key = f"incoming/customers/order/h-{seed}-{batch}-{concurrency}-{fault}-{len(keys)}.csv"
    # When the file lands
    clean.drop(key, body, **env)
    # Then each customer holds (or will hold, from the queue) the file's last row for it
    report = clean.report(key)
    assert report["status"] == "complete"
    assert report["counts"]["read"] == len(keys)
    _check_last_row_wins(clean, last, _lines_of(keys))


def test_rows_behind_a_parked_row_of_the_same_customer_are_parked_not_posted(clean: Harness) -> None:
    # Given 600 rows cycling through 40 customers, 20-row batches, four in flight, and Monetate
    # failing 30% of POSTs with no retries, so batches are parked on the records queue
    keys = [i % 40 for i in range(600)]
    body, last = _file(keys)
    clean.sandbox.faults = FaultConfig(error_rate=0.3, latency_spikes=(0.3, 0.02), seed=11, apply_to="post")
    # When the file lands
    clean.drop(
        "incoming/customers/order/parked.csv",
        body,
        BATCH_MAX_ROWS="20",
        POST_CONCURRENCY="4",
        HTTP_MAX_RETRIES="0",
    )
    # Then some rows were parked, and no customer's later row was posted ahead of its parked one
    report = clean.report("incoming/customers/order/parked.csv")
    assert report["status"] == "complete" and report["counts"]["parked"] > 0
    _check_last_row_wins(clean, last, _lines_of(keys))
