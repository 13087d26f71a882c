"""Counting a finished unit into the report: its rows, its rejects (into the writer), its reasons.

Every unit adds ``read = posted + rejected + parked + unchanged`` (checked here, per unit), so the report's
counts balance whenever it is written, also when the file fails part-way.
"""

from __future__ import annotations

from monetate_ingest.ingest.rejects import RejectsWriter, reject_line
from monetate_ingest.ingest.report import Counts, Report
from monetate_ingest.ingest.units import Unit, UnitOutcome

#: Distinct reject reasons a report keeps; the rest are counted under ``other``.
MAX_REASON_KEYS = 50


def count_unit(report: Report, writer: RejectsWriter, unit: Unit) -> None:
    """Add ``unit``'s outcome to ``report`` and its reject lines to ``writer``."""
    outcome = unit.outcome or UnitOutcome()
    counts = Counts(read=unit.rows, rejected=len(unit.rejects))
    for data in unit.rejects:
        writer.add(data)
    count_reasons(report, unit.reject_fields)
    refused = outcome.refused
    if refused:
        raw_by_line = dict(zip(unit.batch.lines, unit.batch.rows, strict=True)) if unit.batch else {}
        for line, reason in refused:
            writer.add(reject_line(line, reason, raw_by_line.get(line), None))
        count_reasons(report, ["monetate_refused"] * len(refused))
    counts.rejected += len(refused)
    counts.posted = len(outcome.posted)
    counts.parked = outcome.parked
    counts.unchanged = outcome.unchanged
    counts.check()
    for name, value in outcome.sync.items():
        report.sync[name] = report.sync.get(name, 0) + value
    report.counts.add(counts)
    report.batches["posts"] += outcome.posts
    if counts.posted:
        report.batches["posted"] += 1


def count_reasons(report: Report, keys: list[str]) -> None:
    reasons = report.reject_reasons
    for key in keys:
        if key in reasons or len(reasons) < MAX_REASON_KEYS:
            reasons[key] = reasons.get(key, 0) + 1
        else:
            reasons["other"] = reasons.get("other", 0) + 1
