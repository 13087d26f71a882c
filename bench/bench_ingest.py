"""IngestFile throughput and memory: an N-row, 6-column CSV through the real handler.

The file is read from moto (run as a subprocess, so its work is off our GIL) and posted to the
Monetate sandbox with ``validate_rows = False`` (the sandbox must not be what we measure). Next to
it, in the same run, a baseline over the same bytes: ``csv.reader``, one dict per row and
``json.dumps`` per batch of ``BATCH_MAX_ROWS`` rows — the least any CSV → JSON loader must do.

Each measured size runs the handler in a fresh subprocess (only the handler: the stack lives in
this process). On a machine with two or more CPUs the handler's process gets CPU 0 to itself and
the stack (this process with the sandbox, and moto) the other CPUs, as on Lambda, where Monetate
and S3 are other machines; the baseline then runs on CPU 0 too. ``BENCH_PIN=0`` turns that off
(everything shares every CPU: slower and much noisier figures for both). The child reads its own
peak RSS from ``VmHWM`` in ``/proc/self/status`` (not ``ru_maxrss``, which a spawned child
inherits from its parent's address space on Linux).
Debugging aids: ``BENCH_RSS_TRACE=path`` makes the child append ``seconds rss_mib peak_mib`` there
every 50 ms; ``BENCH_PYSPY=prefix`` runs the child under ``py-spy record -f raw`` (not a project
dependency; extra flags such as ``--gil`` or ``--idle`` in ``BENCH_PYSPY_ARGS``), writing
``prefix.<rows>``. The table's detail line adds the CPU seconds of the handler, the sandbox and
moto during the run.

    python -m bench.bench_ingest [--rows N]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

from local.samples import CUSTOMER_FIELDS

SCHEMA = "bench_customers"
FIELDS = CUSTOMER_FIELDS
RSS_SMALL = 100_000


def make_csv(rows: int) -> bytes:
    """``rows`` data rows under a header, 6 columns of every type the coercion handles."""
    out = io.StringIO()
    out.write("customer_id,email,points,vip,signup,tags\n")
    write = out.write
    for i in range(rows):
        write(
            f"c{i:08d},user{i}@example.com,{i % 9973},{'true' if i % 3 else 'no'},"
            f'2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00Z,"gold,tier{i % 7}"\n'
        )
    return out.getvalue().encode()


def baseline(data: bytes, batch_rows: int) -> float:
    """Rows per second of csv.reader → dicts → json.dumps per batch (the floor of any loader)."""
    started = time.perf_counter()
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
    header = next(reader)
    batch: list[dict[str, str]] = []
    count = 0
    for cells in reader:
        batch.append(dict(zip(header, cells, strict=False)))
        if len(batch) >= batch_rows:
            json.dumps({"schema_rows": batch})
            count += len(batch)
            batch = []
    if batch:
        json.dumps({"schema_rows": batch})
        count += len(batch)
    return count / (time.perf_counter() - started)


# -- the measured side: a fresh process that only runs the handler --------------------------------


def _child(event_json: str) -> None:
    """Run the handler on ``event`` (and its continuations); print one JSON line of figures."""
    from monetate_ingest.ingest.handler import default_runtime, make_handler

    from local.lambda_context import FakeLambdaContext

    def context() -> FakeLambdaContext:
        return FakeLambdaContext(function_name="IngestFile", timeout_seconds=900, memory_limit_in_mb=1769)

    pending: list[dict[str, Any]] = []

    def runtime() -> Any:
        rt = default_runtime()
        rt.continuer_for = lambda context: pending.append
        return rt

    handler = make_handler(runtime)
    trace = os.environ.get("BENCH_RSS_TRACE")
    if trace:
        _start_rss_trace(trace)
    started = time.perf_counter()
    cpu_started = time.process_time()
    results = [handler(json.loads(event_json), context())]
    while pending:
        results.append(handler(pending.pop(0), context()))
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    rss_kib = _peak_rss_kib()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "rss_kib": rss_kib,
                "invocations": len(results),
                "results": results,
            }
        )
    )


def _peak_rss_kib() -> int:
    """This process's own peak RSS in KiB: ``VmHWM`` of its address space.

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: on Linux that survives ``exec`` and starts at the
    RSS of the address space the child was spawned from — here the benchmark's parent, which holds
    the generated file and the sandbox's stored rows — so it grew with the file size while the
    handler itself stayed flat.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:  # pragma: no cover - not Linux
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _start_rss_trace(path: str, every: float = 0.05) -> None:
    """Debugging aid: append ``seconds rss_mib peak_mib`` to ``path`` every ``every`` seconds."""
    import threading

    page = os.sysconf("SC_PAGE_SIZE")
    t0 = time.perf_counter()

    def sample() -> None:
        with open(path, "a") as out:
            while True:
                with open("/proc/self/statm") as f:
                    rss = int(f.read().split()[1]) * page / 1024**2
                peak = _peak_rss_kib() / 1024
                out.write(f"{time.perf_counter() - t0:.2f} {rss:.1f} {peak:.1f}\n")
                out.flush()
                time.sleep(every)

    threading.Thread(target=sample, daemon=True).start()


def _measure(stack: Any, rows: int, data: bytes) -> dict[str, Any]:
    """Drop an ``rows``-row file, run the handler in a fresh subprocess, collect its figures."""
    sandbox = stack.sandbox
    sandbox.reset()
    key = f"incoming/{SCHEMA}/bench-{rows}.csv"
    stack.put_file(key, data)
    event = _wait_event(stack, key)
    env = {**os.environ, **stack.env, "PYTHONPATH": os.pathsep.join(_pythonpath())}
    command = [sys.executable, "-m", "bench.bench_ingest", "--child"]
    handler_cpus = _pinning()
    spy = os.environ.get("BENCH_PYSPY")  # a debugging aid: sample the child with py-spy
    if spy:
        command = [
            "py-spy",
            "record",
            *os.environ.get("BENCH_PYSPY_ARGS", "").split(),
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            f"{spy}.{rows}",
            "--",
            *command,
        ]
    sandbox_cpu = time.process_time()  # this process runs the sandbox (and nothing else) meanwhile
    moto_cpu = _cpu_of(stack.moto._proc)
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    if handler_cpus is not None:  # before the child has started its imports, let alone threads
        os.sched_setaffinity(proc.pid, handler_cpus)
    stdout, stderr = proc.communicate(json.dumps(event))
    sandbox_cpu = time.process_time() - sandbox_cpu
    moto_cpu = _cpu_of(stack.moto._proc) - moto_cpu
    lines = [ln for ln in stdout.splitlines() if ln.startswith('{"seconds"')]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}): {stderr[-2000:]}")
    figures = json.loads(lines[-1])
    report = stack.read_json(f"reports/{SCHEMA}/bench-{rows}.csv.report.json")
    store = sandbox._api.store  # the row count without copying a million rows
    figures.update(
        sandbox_cpu_seconds=sandbox_cpu,
        moto_cpu_seconds=moto_cpu,
        rows=rows,
        status=report["status"],
        counts=report["counts"],
        posts=sandbox.counts["data_posts"],
        report_posts=report["batches"]["posts"],
        sandbox_rows=store.schema(SCHEMA, row_count=True)["row_count"],
        rows_per_s=rows / figures["seconds"],
    )
    return figures


def _pinning() -> set[int] | None:
    """The CPUs for the handler (CPU 0), or None: pinning is off or there is only one CPU."""
    if os.environ.get("BENCH_PIN", "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[0]} if len(cpus) >= 2 else None


def _pin_stack(stack: Any) -> None:
    """This process (the sandbox) and moto on every CPU but the handler's."""
    handler = _pinning()
    if handler is None:
        return
    rest = set(os.sched_getaffinity(0)) - handler
    os.sched_setaffinity(0, rest)
    proc = getattr(stack.moto, "_proc", None)
    if proc is not None:
        os.sched_setaffinity(proc.pid, rest)


def _on_handler_cpu(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with this thread on the handler's CPU (the baseline gets the same core)."""
    handler = _pinning()
    if handler is None:
        return fn(*args)
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, handler)
    try:
        return fn(*args)
    finally:
        os.sched_setaffinity(0, before)


def _cpu_of(proc: Any) -> float:
    """CPU seconds (user + system) of a child process so far, from ``/proc`` (0.0 if unknown)."""
    try:
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (AttributeError, OSError, ValueError, IndexError):
        return 0.0


def _wait_event(stack: Any, key: str, timeout: float = 30.0) -> dict[str, Any]:
    from urllib.parse import quote

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msgs = stack.sqs.receive_message(
            QueueUrl=stack.resources.s3_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        for msg in msgs:
            stack.sqs.delete_message(
                QueueUrl=stack.resources.s3_events_queue_url, ReceiptHandle=msg["ReceiptHandle"]
            )
            event = json.loads(msg["Body"])
            keys = [r["s3"]["object"]["key"] for r in event.get("Records", [])]
            if any(k in (key, quote(key, safe=""), quote(key)) for k in keys):
                return dict(event)
    raise RuntimeError(f"no S3 event for {key}")


def _pythonpath() -> list[str]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [os.path.join(root, "layers", "monetate_ingest"), root]


def run(rows: int = 1_000_000) -> list[dict[str, Any]]:
    """Measure and return the table rows ``{"figure", "ours", "baseline", "unit", "ratio"}``."""
    from monetate_ingest.settings import DEFAULT_BATCH_MAX_ROWS

    from local.stack import LocalStack

    batch_rows = int(os.environ.get("BATCH_MAX_ROWS", DEFAULT_BATCH_MAX_ROWS))
    with LocalStack(moto_subprocess=True) as stack:
        stack.sandbox.add_schema({"name": SCHEMA, "type": "attribute", "fields": FIELDS})
        stack.sandbox.validate_rows = False
        small_rows = min(RSS_SMALL, rows)
        all_cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        _pin_stack(stack)
        small = _measure(stack, small_rows, make_csv(small_rows))
        data = make_csv(rows)
        big = _measure(stack, rows, data) if rows != small_rows else small
        base = _on_handler_cpu(baseline, data, batch_rows)
        if all_cpus is not None:
            os.sched_setaffinity(0, all_cpus)
        stack.sandbox.validate_rows = True

    def row(figure: str, ours: float, base_value: float | None, unit: str) -> dict[str, Any]:
        ratio = round(ours / base_value, 3) if base_value else None
        return {
            "figure": figure,
            "ours": round(ours, 1),
            "baseline": None if base_value is None else round(base_value, 1),
            "unit": unit,
            "ratio": ratio,
        }

    mib = 1024.0
    table = [
        row(
            f"end-to-end throughput, {rows:,} rows (baseline: csv.reader+dict+json.dumps)",
            big["rows_per_s"],
            base,
            "rows/s",
        ),
        row(f"wall time, {rows:,} rows", big["seconds"], rows / base, "s"),
        row(
            f"peak RSS of the handler process, {rows:,} rows (baseline: {small_rows:,} rows)",
            big["rss_kib"] / mib,
            small["rss_kib"] / mib,
            "MiB",
        ),
        row(
            f"POSTs made, {rows:,} rows (baseline: ceil(rows / {batch_rows}))",
            big["posts"],
            -(-rows // batch_rows),
            "requests",
        ),
        row("rows stored in the sandbox (baseline: rows in the file)", big["sandbox_rows"], rows, "rows"),
        row(f"invocations (continuations + 1), {rows:,} rows", big["invocations"], 1, "invocations"),
    ]
    for entry in table:
        entry["detail"] = None
    table[0]["detail"] = {
        "status": big["status"],
        "counts": big["counts"],
        "report_posts": big["report_posts"],
        "handler_cpu_seconds": round(big["cpu_seconds"], 2),
        "sandbox_cpu_seconds": round(big["sandbox_cpu_seconds"], 2),
        "moto_cpu_seconds": round(big["moto_cpu_seconds"], 2),
        "small_run": {
            k: small[k]
            for k in ("rows", "seconds", "cpu_seconds", "rows_per_s", "rss_kib", "posts", "sandbox_rows")
        },
    }
    return table


def _print(table: list[dict[str, Any]]) -> None:
    print(f"{'figure':<96} {'ours':>12} {'baseline':>12} {'unit':<12} {'ratio':>7}")
    for r in table:
        base = "" if r["baseline"] is None else f"{r['baseline']:,.1f}"
        ratio = "" if r["ratio"] is None else f"{r['ratio']:.3f}"
        print(f"{r['figure']:<96} {r['ours']:>12,.1f} {base:>12} {r['unit']:<12} {ratio:>7}")
    detail = table[0].get("detail")
    if detail:
        print(json.dumps(detail))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(sys.stdin.read())
        return
    _print(run(args.rows))


if __name__ == "__main__":
    main()
