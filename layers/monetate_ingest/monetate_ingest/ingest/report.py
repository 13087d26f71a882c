"""The per-file report written next to each file, and its invariant
read = posted + rejected + parked + unchanged.

:class:`Counts` checks the invariant; :class:`Report` is the JSON object (source, status, counts,
timings, errors, rejects, batches) and round-trips through the checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["complete", "partial", "failed"]

#: A report keeps at most this many errors (``errors_omitted`` counts the rest) …
MAX_ERRORS = 20
#: … each message at most this many characters (its start and its end, where the advice is) …
MAX_MESSAGE_CHARS = 2_000
_MESSAGE_TAIL = 500
#: … and at most this many items of a list in an error (``<name>_omitted`` counts the rest).
MAX_LIST_ITEMS = 50


class ReportInvariantError(AssertionError):
    """The counts do not add up: a bug, never the input's fault."""


@dataclass
class Counts:
    """Rows of the file: ``read = posted + rejected + parked + unchanged`` (``unchanged``: skipped
    by change-only sync, 0 when it is off)."""

    read: int = 0
    posted: int = 0
    rejected: int = 0
    parked: int = 0
    unchanged: int = 0

    def check(self) -> None:
        if self.read != self.posted + self.rejected + self.parked + self.unchanged:
            raise ReportInvariantError(
                f"counts do not add up: read {self.read} != posted {self.posted} + rejected "
                f"{self.rejected} + parked {self.parked} + unchanged {self.unchanged}"
            )

    def add(self, other: Counts) -> None:
        self.read += other.read
        self.posted += other.posted
        self.rejected += other.rejected
        self.parked += other.parked
        self.unchanged += other.unchanged


def sync_counts(mode: str = "all") -> dict[str, Any]:
    """The report's ``sync`` object: the mode and rows per decision (``unchanged`` includes
    ``superseded``: rows whose source is older than what Monetate holds)."""
    return {"mode": mode, "new": 0, "changed": 0, "unchanged": 0, "superseded": 0}


@dataclass
class Report:
    """What happened to one file; written to ``reports/<schema>/<file>.report.json``."""

    source: dict[str, Any]
    schema: str
    status: Status = "partial"
    dry_run: bool = False
    format: str | None = None
    counts: Counts = field(default_factory=Counts)
    timings: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    rejects_key: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=lambda: {"posted": 0, "parked": 0, "posts": 0})
    invocations: int = 1
    errors_omitted: int = 0
    sync: dict[str, Any] = field(default_factory=sync_counts)

    def fail(self, code: str, message: str, **extra: Any) -> None:
        """Mark the file failed with an error entry; messages and lists are capped."""
        self.status = "failed"
        if len(self.errors) >= MAX_ERRORS:
            self.errors_omitted += 1
            return
        entry: dict[str, Any] = {"code": code, "message": cap_message(message)}
        for name, value in extra.items():
            if isinstance(value, list) and len(value) > MAX_LIST_ITEMS:
                entry[f"{name}_omitted"] = len(value) - MAX_LIST_ITEMS
                value = value[:MAX_LIST_ITEMS]
            entry[name] = cap_message(value) if isinstance(value, str) else value
        self.errors.append(entry)

    def to_dict(self) -> dict[str, Any]:
        self.counts.check()
        data = asdict(self)
        data["counts"] = asdict(self.counts)
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        data = dict(data)
        data["counts"] = Counts(**data.get("counts", {}))
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def cap_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` if short enough, else its start and end around a note of what was left out."""
    if len(text) <= limit:
        return text
    tail = min(_MESSAGE_TAIL, limit // 4)
    head = limit - tail - 40  # room for the note
    return f"{text[:head]} … [{len(text) - head - tail:,} characters left out] … {text[-tail:]}"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
