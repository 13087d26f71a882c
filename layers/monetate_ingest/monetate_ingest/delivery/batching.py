"""Group coerced rows into POST bodies that respect the row and byte limits.

Every row is JSON-encoded exactly once (compact separators, UTF-8); a :class:`Batch` keeps the
encoded rows so that :meth:`Batch.split` can bisect without re-encoding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from monetate_ingest.formats.encoding import encode_row
from monetate_ingest.formats.exceptions import RowError

PREFIX = b'{"schema_rows":['
SUFFIX = b"]}"
OVERHEAD = len(PREFIX) + len(SUFFIX)


def encode(row: dict[str, Any]) -> bytes:
    """A row's UTF-8 JSON as it goes into a body; :class:`RowError` when it cannot be encoded."""
    try:
        return encode_row(row).encode()
    except (UnicodeEncodeError, TypeError, ValueError) as exc:
        raise RowError(f"row cannot be encoded as JSON: {exc}") from None
    except RecursionError:
        raise RowError("row cannot be encoded as JSON: its values nest too deeply") from None


def body_of(encoded: list[bytes]) -> bytes:
    """The exact request body ``{"schema_rows":[...]}`` for these encoded rows."""
    return PREFIX + b",".join(encoded) + SUFFIX


class Batch:
    """Rows ready to POST: ``body`` is exactly what goes on the wire.

    ``lines`` are the source lines (tags) of ``rows``; ``encoded`` their UTF-8 JSON; ``oversize``
    marks a single row that alone exceeds the byte limit (Monetate will likely refuse it; it is
    sent alone). ``rows`` are the row dicts; a batch built from encoded rows only (see
    :meth:`Batcher.add_encoded`) decodes them from ``encoded`` when first asked (parking and
    refusals need them; posting does not).
    """

    __slots__ = ("_rows", "body", "encoded", "lines", "oversize")

    def __init__(
        self,
        rows: list[dict[str, Any]] | None,
        lines: list[int],
        body: bytes,
        oversize: bool = False,
        encoded: list[bytes] | None = None,
    ) -> None:
        self._rows = rows
        self.lines = lines
        self.body = body
        self.oversize = oversize
        self.encoded: list[bytes] = [] if encoded is None else encoded

    @classmethod
    def of(
        cls,
        rows: list[dict[str, Any]] | None,
        lines: list[int],
        encoded: list[bytes],
        oversize: bool = False,
    ) -> Batch:
        return cls(rows, lines, body_of(encoded), oversize, encoded)

    @property
    def rows(self) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = [json.loads(data) for data in self.encoded]
        return self._rows

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """The row dicts one at a time, decoded as they go when the batch has only ``encoded``
        (nothing is kept: a large batch's rows as dicts would hold tens of MB)."""
        if self._rows is not None:
            yield from self._rows
        else:
            for data in self.encoded:
                yield json.loads(data)

    def __len__(self) -> int:
        return len(self.lines)

    def __repr__(self) -> str:
        return f"Batch(lines={self.lines!r}, bytes={len(self.body)}, oversize={self.oversize})"

    def split(self) -> tuple[Batch, Batch]:
        """Two halves (first half no smaller), reusing the encoded rows — for bisection."""
        if len(self.lines) < 2:
            raise ValueError("a batch of one row cannot be split")
        mid = (len(self.lines) + 1) // 2
        rows = self._rows
        return (
            Batch.of(None if rows is None else rows[:mid], self.lines[:mid], self.encoded[:mid]),
            Batch.of(None if rows is None else rows[mid:], self.lines[mid:], self.encoded[mid:]),
        )


class Batcher:
    """Accumulates rows; :meth:`add` hands back a full batch when the next row would not fit."""

    __slots__ = ("_encoded", "_lines", "_rows", "_size", "max_bytes", "max_rows")

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        if max_bytes < OVERHEAD + 2:
            raise ValueError(f"max_bytes must be at least {OVERHEAD + 2}")
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self._reset()

    def _reset(self) -> None:
        self._rows: list[dict[str, Any] | None] = []
        self._lines: list[int] = []
        self._encoded: list[bytes] = []
        self._size = OVERHEAD - 1  # the first row brings no comma

    @property
    def pending(self) -> int:
        """Rows held, not yet handed out."""
        return len(self._lines)

    def add(self, line: int, row: dict[str, Any]) -> Batch | None:
        """Take a row; returns the previous batch when this row does not fit in it.

        Raises :class:`RowError` (nothing changes) if the row cannot be encoded as UTF-8 JSON.
        """
        return self._push(line, encode(row), row)

    def add_encoded(self, line: int, data: bytes) -> Batch | None:
        """:meth:`add` for a row given as its UTF-8 JSON, exactly as :func:`encode_row` writes it.

        The batch's ``rows`` are then decoded from ``encoded`` only if they are asked for.
        """
        size = self._size + len(data) + 1
        lines = self._lines
        if lines and (len(lines) >= self.max_rows or size > self.max_bytes):
            full = self._emit()
            self._lines.append(line)
            self._encoded.append(data)
            self._rows.append(None)
            self._size += len(data) + 1
            return full
        lines.append(line)
        self._encoded.append(data)
        self._rows.append(None)
        self._size = size
        return None

    def add_run(self, lines: Sequence[int], encoded: list[bytes], start: int = 0) -> tuple[int, Batch | None]:
        """Take rows ``encoded[start:]`` (on ``lines[start:]``) while they fit the batch being built.

        Returns how many were taken, and the batch handed out before them when the first did not
        fit (then the rest go into a new batch). Row for row the same as :meth:`add_encoded`, but
        a run that fits costs a few list operations, not a call per row.
        """
        full = None
        held = self._lines
        if held and (len(held) >= self.max_rows or self._size + len(encoded[start]) + 1 > self.max_bytes):
            full = self._emit()
            held = self._lines
        end = min(len(encoded), start + self.max_rows - len(held))
        run = encoded[start:end]
        size = self._size + sum(map(len, run)) + len(run)
        if size > self.max_bytes:  # the run overflows the bytes: take the rows that fit (at least one)
            size = self._size
            count = 0
            for data in run:  # the first always fits: checked above, or it starts the batch alone
                if count and size + len(data) + 1 > self.max_bytes:
                    break
                size += len(data) + 1
                count += 1
            run = run[:count]
            end = start + count
        held.extend(lines[start:end])
        self._encoded.extend(run)
        self._rows.extend([None] * len(run))
        self._size = size
        return len(run), full

    def _push(self, line: int, data: bytes, row: dict[str, Any] | None) -> Batch | None:
        size = self._size + len(data) + 1
        lines = self._lines
        full = None
        if lines and (len(lines) >= self.max_rows or size > self.max_bytes):
            full = self._emit()
            lines = self._lines
            size = self._size + len(data) + 1
        lines.append(line)
        self._encoded.append(data)
        self._rows.append(row)
        self._size = size
        return full

    def flush(self) -> Batch | None:
        """The rows held, as a batch (None when empty)."""
        return self._emit() if self._lines else None

    def _emit(self) -> Batch:
        oversize = self._size > self.max_bytes
        rows = self._rows
        known = None if None in rows else rows  # dicts of every row, or decode them when needed
        batch = Batch.of(known, self._lines, self._encoded, oversize)  # type: ignore[arg-type]
        self._reset()
        return batch
