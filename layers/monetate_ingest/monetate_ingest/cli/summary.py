"""A report (``Report.to_dict()`` or the stored JSON) as a few readable lines."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

TOP_REASONS = 5


def describe(report: Mapping[str, Any], *, locate: Callable[[str], str] = str) -> list[str]:
    """Lines for a person; ``locate(key)`` turns the rejects key into a path or an s3:// URL."""
    counts = report.get("counts") or {}
    source = report.get("source") or {}
    status = str(report.get("status", "?"))
    if report.get("dry_run"):
        status += " (dry run: nothing was posted)"
    lines = [
        f"status:      {status}",
        f"schema:      {report.get('schema', '?')}",
        f"source:      {_source(source)}",
        "rows:        " + "  ".join(f"{name} {int(counts.get(name, 0)):,}" for name in _row_counts(report)),
    ]
    sync = _sync(report.get("sync"))
    if sync:
        lines.append(f"sync:        {sync}")
    timing = _timing(report.get("timings") or {}, report.get("invocations"))
    if timing:
        lines.append(f"timings:     {timing}")
    batches = report.get("batches") or {}
    if batches.get("posts"):
        lines.append(
            f"posts:       {int(batches['posts']):,} POSTs, {int(batches.get('parked', 0)):,} batches parked"
        )
    for i, error in enumerate(report.get("errors") or []):
        label = "errors:" if i == 0 else ""
        lines.append(f"{label:<12} {error.get('code', 'error')}: {error.get('message', '')}")
    reasons = report.get("reject_reasons") or {}
    if reasons:
        top = sorted(reasons.items(), key=lambda kv: (-int(kv[1]), kv[0]))[:TOP_REASONS]
        shown = ", ".join(f"{field} {count:,}" for field, count in top)
        more = f" (+{len(reasons) - TOP_REASONS} more)" if len(reasons) > TOP_REASONS else ""
        lines.append(f"rejected by: {shown}{more}")
    rejects = report.get("rejects_key")
    if rejects:
        lines.append(f"rejects:     {locate(str(rejects))}")
    return lines


def _row_counts(report: Mapping[str, Any]) -> tuple[str, ...]:
    """read, posted, rejected, parked; and unchanged when change-only sync was on or skipped any."""
    names: tuple[str, ...] = ("read", "posted", "rejected", "parked")
    sync = report.get("sync") or {}
    if sync.get("mode") == "changes" or int((report.get("counts") or {}).get("unchanged", 0)):
        names += ("unchanged",)
    return names


def _sync(sync: Any) -> str:
    """``changes: new 10  changed 2  unchanged 988 (superseded 1)``, or ``all (every row posted)``."""
    if not isinstance(sync, Mapping) or not sync.get("mode"):
        return ""
    if sync["mode"] != "changes":
        return f"{sync['mode']} (every row posted, the ledger not used)"
    text = "changes: " + "  ".join(f"{n} {int(sync.get(n, 0)):,}" for n in ("new", "changed", "unchanged"))
    return text + f" (superseded {int(sync.get('superseded', 0)):,})"


def _source(source: Mapping[str, Any]) -> str:
    bucket, key = source.get("bucket"), source.get("key", "?")
    where = f"s3://{bucket}/{key}" if bucket and bucket != "local" else str(key)
    size = source.get("size")
    return f"{where} ({int(size):,} bytes)" if isinstance(size, int) else where


def _timing(timings: Mapping[str, Any], invocations: Any) -> str:
    started, finished = timings.get("started"), timings.get("finished")
    parts = []
    if started:
        parts.append(f"started {started}")
    if finished:
        parts.append(f"finished {finished}")
    seconds = _seconds_between(started, finished)
    if seconds is not None:
        parts.append(f"{seconds:,.1f} s")
    if isinstance(invocations, int) and invocations > 1:
        parts.append(f"{invocations} invocations")
    return ", ".join(parts)


def _seconds_between(start: Any, end: Any) -> float | None:
    try:
        a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (b - a).total_seconds()
