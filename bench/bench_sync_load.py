"""Change-only sync end to end (issue 14): a file loaded, then the same file with 2% changed.

An N-row customers CSV (unique key ``customer_id``) goes through the real IngestFile handler with
``SYNC_MODE=changes``, ``POST_CONCURRENCY`` and ``BATCH_MAX_ROWS`` at their defaults, against the
Monetate sandbox answering every Data API POST after 100 ms (``FaultConfig(latency=0.1,
apply_to="post")``). Load 1 posts every row; load 2 is the same file with every 50th row changed
(2%, spread evenly). Each load runs the handler in a fresh subprocess pinned to CPU 0, as
``bench_ingest`` does (the stack, moto and the ledger get the other CPUs; ``BENCH_PIN=0`` turns
that off), which reads its own peak RSS (``VmHWM``).

What is measured and what is projected:

* **Measured**: POSTs (the sandbox's count), wall and CPU seconds, rows posted and unchanged (the
  report), peak RSS of the handler's process; the ledger calls, counted exactly as
  ``sync.dynamo.DynamoLedger`` would make them (``ceil(distinct keys / 100)`` BatchGetItem per
  lookup, one conditional PutItem per distinct key written), and their capacity units (1 RRU per
  strongly consistent read of an item < 4 KB, found or not; 1 WRU per write < 1 KB, refused by
  its condition or not) and on-demand cost.
* **Not DynamoDB**: moto takes ~2,400 s for a million conditional PutItems, so in the loads the
  ledger is ``sync.memory.InMemoryLedger`` held in a separate process (a ``multiprocessing``
  manager on a Unix socket, so the ledger's million entries are not in the handler's RSS, as
  DynamoDB's are not), reached through a counting wrapper; entries cross the socket as tuples.
* **Measured on a sample, then projected**: the client-side CPU of the real ``DynamoLedger``
  (botocore, 16 threads) per key looked up and per PutItem, against moto on ``SAMPLE_KEYS`` keys;
  "with DynamoDB" adds that CPU times the counted calls to the measured load (an upper bound: as
  if it never overlapped the POSTs' waits, on the handler's one vCPU; moto, over plain HTTP,
  closes every connection, so a call's CPU includes a TCP connect where AWS adds TLS instead).
  DynamoDB's own latency is not measured: the write floor of the 16-thread pool is stated at an
  assumed ``ASSUMED_PUT_MS`` per PutItem. The measured wall includes the in-memory ledger's
  socket round trips (``ledger.seconds`` in the detail line, summed over the workers).

Peak RSS of load 2 is measured at ``RSS_SMALL`` rows (10,000 with ``--quick``) and at N rows; the
growth divided by the extra rows is the bytes held per key (none beyond the batches in flight is
the design). ``BENCH_TRACEMALLOC=1`` also reports the handler's tracemalloc peak (slow). The
detail line adds where load 2's CPU went in the sync wiring (thread CPU of ``FileSync.plan`` and
of its hashing and lookups, measured in the child by wrapping those methods).

    python -m bench.bench_sync_load [--rows N]     (default 1,000,000: ~4 min on two CPUs)
    make bench [BENCH_ARGS=--quick]                (with --quick: 100,000 rows)
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Sequence
from multiprocessing.managers import BaseManager
from typing import Any

from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.ledger import Lookup, WriteOutcome, newest_per_key
from monetate_ingest.sync.memory import InMemoryLedger

from bench.bench_ingest import (
    _cpu_of,
    _on_handler_cpu,
    _peak_rss_kib,
    _pin_stack,
    _pinning,
    _pythonpath,
    _wait_event,
)
from bench.bench_sync import RRU_PRICE, WRU_PRICE
from bench.bench_sync import _entries as sample_entries
from local.samples import CUSTOMER_FIELDS

SCHEMA = "bench_sync_customers"
CHANGE_EVERY = 50  # every 50th row changed in load 2: 2%, spread evenly
LATENCY = 0.1  # seconds per Data API POST
RSS_SMALL = 100_000
SAMPLE_KEYS = int(os.environ.get("BENCH_SYNC_SAMPLE_KEYS", "5000"))
GET_BATCH = 100  # keys per BatchGetItem (sync.dynamo.GET_BATCH)
LEDGER_WORKERS = 16  # DynamoLedger's pool
ASSUMED_PUT_MS = 5.0  # an in-region conditional PutItem (assumption, not measured)
MILLION = 1_000_000
Packed = tuple[str, bytes, float, float, str, int]


def make_csv(rows: int, *, changed: bool = False) -> bytes:
    """``rows`` customers under a header; ``changed``: every ``CHANGE_EVERY``-th row's points differ."""
    out = io.StringIO()
    out.write("customer_id,email,points,vip,signup,tags\n")
    write = out.write
    for i in range(rows):
        points = i % 9973 + (100_000 if changed and i % CHANGE_EVERY == 0 else 0)
        write(
            f"c{i:08d},user{i}@example.com,{points},{'true' if i % 3 else 'no'},"
            f'2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00Z,"gold,tier{i % 7}"\n'
        )
    return out.getvalue().encode()


# -- the ledger: InMemoryLedger in a manager process, counted as DynamoLedger would call --------


def _pack(e: LedgerEntry) -> Packed:
    return (e.key_id, e.fingerprint, e.posted_at, e.source.time, e.source.origin, e.source.line)


def _unpack(p: Sequence[Any]) -> LedgerEntry:
    return LedgerEntry(p[0], p[1], p[2], SourceTime(p[3], p[4], p[5]))


class _Store(InMemoryLedger):
    """The manager's side: InMemoryLedger's semantics, tuples over the pipe (dataclasses pickle
    ~10x slower), and no log of lookups (it would hold every key read)."""

    def lookup_packed(self, key_ids: list[str]) -> list[Packed]:
        found = self.lookup(key_ids)
        self.lookups.clear()
        return [_pack(e) for e in found.entries.values()]

    def record_packed(self, packed: list[Packed], full_every_days: int) -> tuple[int, int, int]:
        out = self.record([_unpack(p) for p in packed], full_every_days)
        return out.written, out.kept_newer, out.failed

    def reset(self) -> None:
        with self._lock:
            self.entries.clear()
            self.expirations.clear()

    def size(self) -> int:
        return len(self.entries)


_STORE: list[_Store] = []


def _the_store() -> _Store:
    if not _STORE:
        _STORE.append(_Store())
    return _STORE[0]


class _LedgerManager(BaseManager):
    pass


_LedgerManager.register(
    "ledger", callable=_the_store, exposed=("lookup_packed", "record_packed", "reset", "size")
)


class CountingLedger:
    """A ``Ledger`` over the manager's store that counts DynamoDB calls as ``DynamoLedger`` makes
    them, and the time spent in them. Thread-safe."""

    def __init__(self, remote: Any) -> None:
        self.remote = remote
        names = ("lookups", "batch_get_calls", "keys_read", "found", "records", "put_calls", "written")
        self.figures: dict[str, float] = dict.fromkeys((*names, "kept_newer"), 0)
        self.figures["seconds"] = 0.0
        self._lock = threading.Lock()

    def _add(self, started: float, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                self.figures[name] += value
            self.figures["seconds"] += time.perf_counter() - started

    def lookup(self, key_ids: Collection[str]) -> Lookup:
        started = time.perf_counter()
        unique = list(dict.fromkeys(key_ids))
        found = {p[0]: _unpack(p) for p in self.remote.lookup_packed(unique)}
        calls = math.ceil(len(unique) / GET_BATCH)
        self._add(started, lookups=1, batch_get_calls=calls, keys_read=len(unique), found=len(found))
        return Lookup(found)

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        started = time.perf_counter()
        unique = newest_per_key(entries)
        written, kept, failed = self.remote.record_packed([_pack(e) for e in unique], full_every_days)
        outcome = WriteOutcome(written, kept + len(entries) - len(unique), failed)
        self._add(started, records=1, put_calls=len(unique), written=written, kept_newer=kept)
        return outcome


# -- the measured side: a fresh process that only runs the handler -------------------------------


class _ThreadCpu:
    """Thread CPU seconds spent in wrapped methods (summed over the workers)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def wrap(self, owner: type, name: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        label = f"{owner.__name__}.{name}"

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds[label] = self.seconds.get(label, 0.0) + spent
                    self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, name, timed)


def _child(payload_json: str) -> None:
    """Run the handler on the event (and its continuations); print one JSON line of figures."""
    from monetate_ingest.ingest.change_sync import FileSync
    from monetate_ingest.ingest.handler import default_runtime, make_handler
    from monetate_ingest.sync.session import SyncSession

    from local.lambda_context import FakeLambdaContext

    payload = json.loads(payload_json)
    manager = _LedgerManager(address=payload["ledger"], authkey=bytes.fromhex(payload["authkey"]))
    manager.connect()
    ledger = CountingLedger(manager.ledger())  # type: ignore[attr-defined]
    profile = _ThreadCpu()
    for owner, name in ((FileSync, "plan"), (SyncSession, "row"), (SyncSession, "classify")):
        profile.wrap(owner, name)
    pending: list[dict[str, Any]] = []

    def runtime() -> Any:
        rt: Any = default_runtime()
        rt.continuer_for = lambda context: pending.append
        if rt.deps.sync.mode != "changes":
            raise RuntimeError("SYNC_MODE=changes did not reach the handler's settings")
        rt.deps.sync = dataclasses.replace(rt.deps.sync, ledger=ledger)
        return rt

    def context() -> FakeLambdaContext:
        return FakeLambdaContext(function_name="IngestFile", timeout_seconds=900, memory_limit_in_mb=1769)

    handler = make_handler(runtime)
    traced = os.environ.get("BENCH_TRACEMALLOC") == "1"
    if traced:
        import tracemalloc

        tracemalloc.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    results = [handler(payload["event"], context())]
    while pending:
        results.append(handler(pending.pop(0), context()))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    figures: dict[str, Any] = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "rss_kib": _peak_rss_kib(),
        "invocations": len(results),
        "ledger": ledger.figures,
        "sync_cpu": {k: round(v, 3) for k, v in profile.seconds.items()},
        "sync_calls": profile.calls,
    }
    if traced:
        figures["tracemalloc_peak_kib"] = tracemalloc.get_traced_memory()[1] // 1024
    print(json.dumps(figures))


def _load(stack: Any, ledger_address: str, authkey: bytes, name: str, data: bytes) -> dict[str, Any]:
    """Drop ``data`` as ``name``, run the handler on it in a fresh subprocess, collect its figures."""
    from local.sandbox.faults import FaultConfig

    sandbox = stack.sandbox
    sandbox.reset()  # rows, counters and faults
    sandbox.faults = FaultConfig(latency=LATENCY, apply_to="post")
    key = f"incoming/{SCHEMA}/{name}"
    stack.put_file(key, data)
    event = _wait_event(stack, key)
    env = {**os.environ, **stack.env, "SYNC_MODE": "changes", "PYTHONPATH": os.pathsep.join(_pythonpath())}
    for var in ("POST_CONCURRENCY", "BATCH_MAX_ROWS"):  # the defaults are what is measured
        env.pop(var, None)
    payload = json.dumps({"event": event, "ledger": ledger_address, "authkey": authkey.hex()})
    moto_cpu = _cpu_of(stack.moto._proc)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_sync_load", "--child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    handler_cpus = _pinning()
    if handler_cpus is not None:
        os.sched_setaffinity(proc.pid, handler_cpus)
    stdout, stderr = proc.communicate(payload)
    lines = [ln for ln in stdout.splitlines() if ln.startswith('{"seconds"')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    report = stack.read_json(f"reports/{SCHEMA}/{name}.report.json")
    figures.update(
        moto_cpu_seconds=_cpu_of(stack.moto._proc) - moto_cpu,
        status=report["status"],
        counts=report["counts"],
        sync=report["sync"],
        posts=sandbox.counts["data_posts"],
        report_posts=report["batches"]["posts"],
    )
    return figures


def _pair(stack: Any, manager: Any, authkey: bytes, rows: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Load 1 (every row) and load 2 (2% changed) of ``rows`` rows on an empty ledger."""
    manager.ledger().reset()
    first = _load(stack, manager.address, authkey, f"sync-{rows}-load1.csv", make_csv(rows))
    second = _load(stack, manager.address, authkey, f"sync-{rows}-load2.csv", make_csv(rows, changed=True))
    first["ledger_entries"] = second["ledger_entries"] = manager.ledger().size()
    return first, second


def _dynamo_sample(stack: Any, keys: int) -> dict[str, float]:
    """Client-side CPU of the real DynamoLedger against moto (subprocess): per PutItem, per key read."""
    from monetate_ingest.sync.dynamo import DynamoLedger

    entries = sample_entries(keys)
    ledger = DynamoLedger(stack.resources.ledger_table, client=stack.moto.client("dynamodb"))
    ledger.lookup([entries[0].key_id])  # warm the client (endpoint, model) outside the figures
    moto0, cpu0, wall0 = _cpu_of(stack.moto._proc), time.process_time(), time.perf_counter()
    outcome = ledger.record(entries, 7)
    put_cpu, put_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    put_moto = _cpu_of(stack.moto._proc) - moto0
    rounds = 3
    cpu0, wall0 = time.process_time(), time.perf_counter()
    found = 0
    for _ in range(rounds):
        found += len(ledger.lookup([e.key_id for e in entries]).entries)
    get_cpu, get_wall = time.process_time() - cpu0, time.perf_counter() - wall0
    ledger.close()
    return {
        "keys": keys,
        "written": outcome.written,
        "found": found / rounds,
        "put_cpu_us": put_cpu / keys * 1e6,
        "put_wall_us": put_wall / keys * 1e6,
        "put_moto_cpu_us": put_moto / keys * 1e6,
        "get_cpu_us_per_key": get_cpu / (rounds * keys) * 1e6,
        "get_wall_us_per_key": get_wall / (rounds * keys) * 1e6,
    }


def run(rows: int = 1_000_000) -> list[dict[str, Any]]:
    """Measure and return the table rows ``{"figure", "ours", "baseline", "unit", "ratio"}``."""
    from local.stack import LocalStack

    authkey = secrets.token_bytes(16)
    manager = _LedgerManager(authkey=authkey)  # a Unix socket: no Nagle / delayed-ACK stalls
    manager.start()  # before the stack's threads: the manager's process is forked
    try:
        with LocalStack(moto_subprocess=True) as stack:
            stack.sandbox.add_schema({"name": SCHEMA, "type": "attribute", "fields": CUSTOMER_FIELDS})
            stack.sandbox.validate_rows = False
            all_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            _pin_stack(stack)
            if _pinning() is not None:
                os.sched_setaffinity(manager._process.pid, os.sched_getaffinity(0))  # type: ignore[attr-defined]
            small_rows = RSS_SMALL if rows > RSS_SMALL else max(1_000, rows // 10)
            small = _pair(stack, manager, authkey, small_rows)
            first, second = _pair(stack, manager, authkey, rows)
            manager.ledger().reset()  # type: ignore[attr-defined]  # free its memory before the sample
            sample = _on_handler_cpu(_dynamo_sample, stack, SAMPLE_KEYS)  # alone on its CPU, as on Lambda
            if all_cpus is not None:
                os.sched_setaffinity(0, all_cpus)
            stack.sandbox.validate_rows = True
    finally:
        manager.shutdown()
    return _table(rows, first, second, small_rows, small[1], sample)


def _table(
    rows: int,
    first: dict[str, Any],
    second: dict[str, Any],
    small_rows: int,
    small: dict[str, Any],
    sample: dict[str, float],
) -> list[dict[str, Any]]:
    def row(figure: str, ours: float, base: float | None, unit: str, digits: int = 1) -> dict[str, Any]:
        return {
            "figure": figure,
            "ours": round(ours, digits),
            "baseline": None if base is None else round(base, digits),
            "unit": unit,
            "ratio": round(ours / base, 3) if base else None,
        }

    per_m = MILLION / rows
    l1, l2 = first["ledger"], second["ledger"]

    def extra_cpu(ledger: dict[str, Any]) -> float:
        """Seconds of DynamoLedger client CPU for these calls (measured per call on moto)."""
        reads, puts = float(ledger["keys_read"]), float(ledger["put_calls"])
        return (reads * sample["get_cpu_us_per_key"] + puts * sample["put_cpu_us"]) / 1e6

    def cost(ledger: dict[str, Any]) -> float:
        return (float(ledger["keys_read"]) * RRU_PRICE + float(ledger["put_calls"]) * WRU_PRICE) * per_m

    proj1, proj2 = first["seconds"] + extra_cpu(l1), second["seconds"] + extra_cpu(l2)
    label = f"{rows:,} rows, load 2 (2% changed) vs load 1 (baseline)"
    table = [
        row(f"sync POSTs, {label}; target ratio <= 0.03", second["posts"], first["posts"], "requests", 0),
        row(f"sync wall time, {label}; target ratio <= 0.35", second["seconds"], first["seconds"], "s"),
        row(f"sync rows posted, {label}", second["counts"]["posted"], first["counts"]["posted"], "rows", 0),
        row(
            f"sync rows unchanged, {rows:,} rows, load 2 (baseline: the rows not changed)",
            second["counts"]["unchanged"],
            rows - math.ceil(rows / CHANGE_EVERY),
            "rows",
            0,
        ),
        row(f"sync handler CPU, {label}", second["cpu_seconds"], first["cpu_seconds"], "s"),
        row(
            "sync ledger BatchGetItem calls per 1M rows (counted), load 2 vs load 1",
            l2["batch_get_calls"] * per_m,
            l1["batch_get_calls"] * per_m,
            "calls",
            0,
        ),
        row(
            "sync ledger reads per 1M rows = RRU (strongly consistent, < 4 KB), load 2 vs load 1",
            l2["keys_read"] * per_m,
            l1["keys_read"] * per_m,
            "RRU",
            0,
        ),
        row(
            "sync ledger conditional PutItem per 1M rows = WRU (< 1 KB), load 2 vs load 1",
            l2["put_calls"] * per_m,
            l1["put_calls"] * per_m,
            "WRU",
            0,
        ),
        row("sync ledger on-demand cost per 1M rows, load 2 vs load 1", cost(l2), cost(l1), "$", 3),
        row(
            f"DynamoLedger client CPU per PutItem (measured: moto, {sample['keys']:,} keys, 16 threads)",
            sample["put_cpu_us"],
            None,
            "us",
        ),
        row(
            f"DynamoLedger client CPU per key read (measured: moto, {sample['keys']:,} keys, BatchGetItem)",
            sample["get_cpu_us_per_key"],
            None,
            "us",
        ),
        row(
            "PROJECTED wall with DynamoDB: measured + ledger client CPU x calls, load 2 vs load 1",
            proj2,
            proj1,
            "s",
        ),
        row(
            f"ASSUMED write floor of the ledger pool: PutItems x {ASSUMED_PUT_MS:g} ms / {LEDGER_WORKERS}, "
            "load 2 vs load 1",
            l2["put_calls"] * ASSUMED_PUT_MS / 1e3 / LEDGER_WORKERS,
            l1["put_calls"] * ASSUMED_PUT_MS / 1e3 / LEDGER_WORKERS,
            "s",
        ),
        row(
            f"sync peak RSS of the handler, load 2, {rows:,} rows (baseline: {small_rows:,} rows)",
            second["rss_kib"] / 1024,
            small["rss_kib"] / 1024,
            "MiB",
        ),
        row(
            f"sync RSS growth per extra key, load 2 ({small_rows:,} -> {rows:,} rows)",
            (second["rss_kib"] - small["rss_kib"]) * 1024 / max(1, rows - small_rows),
            None,
            "B/key",
        ),
        row(
            f"sync peak RSS of the handler, load 1 vs load 2, {rows:,} rows",
            first["rss_kib"] / 1024,
            second["rss_kib"] / 1024,
            "MiB",
        ),
    ]
    for entry in table:
        entry["detail"] = None
    keep = ("seconds", "cpu_seconds", "rss_kib", "invocations", "posts", "report_posts", "status")
    table[0]["detail"] = {
        "load1": {
            **{k: first[k] for k in keep},
            "counts": first["counts"],
            "sync": first["sync"],
            "ledger": l1,
        },
        "load2": {
            **{k: second[k] for k in keep},
            "counts": second["counts"],
            "sync": second["sync"],
            "ledger": l2,
            "sync_cpu": second["sync_cpu"],
            "sync_calls": second["sync_calls"],
        },
        "ledger_entries_after": first["ledger_entries"],
        "small_load2": {k: small[k] for k in (*keep, "counts", "sync")},
        "dynamo_sample": {k: round(v, 1) for k, v in sample.items()},
        "projected_extra_cpu_s": {"load1": round(extra_cpu(l1), 1), "load2": round(extra_cpu(l2), 1)},
        "tracemalloc_peak_kib": {
            "load2": second.get("tracemalloc_peak_kib"),
            "small_load2": small.get("tracemalloc_peak_kib"),
        },
    }
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(sys.stdin.read())
        return
    from bench.table import print_table

    table = run(args.rows)
    print_table(table)
    print(json.dumps(table[0]["detail"]))


if __name__ == "__main__":
    main()
