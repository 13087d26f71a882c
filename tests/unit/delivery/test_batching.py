"""Batches of rows within the row and byte limits, encoded once."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.formats.encoding import encode_row
from monetate_ingest.formats.exceptions import RowError


def encoded(row: dict[str, Any]) -> bytes:
    return json.dumps(row, separators=(",", ":"), ensure_ascii=False).encode()


def drain(batcher: Batcher, rows: list[dict[str, Any]]) -> list[Batch]:
    out = [b for i, row in enumerate(rows, 1) if (b := batcher.add(i, row)) is not None]
    last = batcher.flush()
    return out + ([last] if last else [])


def test_body_is_the_exact_request_json() -> None:
    # Given two rows, one with non-ASCII text
    rows: list[dict[str, Any]] = [{"id": "1", "n": 1.5, "ok": True}, {"id": "é€", "tags": "a,b"}]
    batch = drain(Batcher(10, 10_000), rows)[0]
    # Then the body is compact UTF-8 JSON of exactly those rows
    assert batch.body == b'{"schema_rows":[' + b",".join(encoded(r) for r in rows) + b"]}"
    assert json.loads(batch.body) == {"schema_rows": rows}
    assert batch.rows == rows and batch.lines == [1, 2] and not batch.oversize


def test_encoder_matches_json_dumps() -> None:
    row = {"a": 'x\u2028"\\', "b": None, "c": [1, {"d": 1e100}], "e": -0.0}
    assert encode_row(row) == json.dumps(row, separators=(",", ":"), ensure_ascii=False)


def test_add_returns_the_full_batch_when_the_row_limit_is_reached() -> None:
    # Given a limit of 2 rows
    batcher = Batcher(2, 10_000)
    # When 3 rows are added
    results = [batcher.add(i, {"i": i}) for i in range(3)]
    # Then the third add hands out the first two and keeps the third
    assert results[:2] == [None, None]
    assert results[2] is not None and results[2].rows == [{"i": 0}, {"i": 1}]
    assert batcher.pending == 1
    last = batcher.flush()
    assert last is not None and last.rows == [{"i": 2}] and last.lines == [2]
    assert batcher.flush() is None


def test_byte_limit_is_exact() -> None:
    # Given rows of 9 bytes each ({"i":"x"}): 2 rows make a body of 16 + 9 + 1 + 9 + 2 = 37 bytes
    row = {"i": "x"}
    assert len(encoded(row)) == 9
    batches = drain(Batcher(100, 37), [row] * 5)
    # Then batches hold 2 rows, each body exactly at the limit
    assert [len(b.rows) for b in batches] == [2, 2, 1]
    assert [len(b.body) for b in batches] == [37, 37, 27]
    # And one byte less means one row per batch
    assert [len(b.rows) for b in drain(Batcher(100, 36), [row] * 3)] == [1, 1, 1]


def test_oversize_row_is_its_own_flagged_batch() -> None:
    # Given a row bigger than the byte limit between normal rows
    small, big = {"i": "x"}, {"i": "x" * 500}
    batches = drain(Batcher(100, 100), [small, big, small])
    # Then it travels alone, flagged, and the others are unaffected
    assert [b.rows for b in batches] == [[small], [big], [small]]
    assert [b.oversize for b in batches] == [False, True, False]
    assert [b.lines for b in batches] == [[1], [2], [3]]


def test_oversize_row_first_and_last() -> None:
    big = {"i": "x" * 500}
    batches = drain(Batcher(100, 100), [big, big])
    assert [(b.rows, b.oversize) for b in batches] == [([big], True), ([big], True)]


def test_split_halves_reuse_encoded_rows() -> None:
    # Given a batch of 5 rows
    rows = [{"i": i} for i in range(5)]
    batch = drain(Batcher(10, 10_000), rows)[0]
    # When it is split
    left, right = batch.split()
    # Then the halves are 3 + 2 rows with matching lines and bodies
    assert (left.rows, left.lines) == (rows[:3], [1, 2, 3])
    assert (right.rows, right.lines) == (rows[3:], [4, 5])
    assert json.loads(left.body) == {"schema_rows": rows[:3]}
    assert left.encoded[0] is batch.encoded[0]
    with pytest.raises(ValueError, match="cannot be split"):
        right.split()[1].split()


def test_unencodable_row_is_a_row_error_and_changes_nothing() -> None:
    # Given a lone surrogate (only reachable through a JSON "\ud800" escape)
    batcher = Batcher(10, 10_000)
    batcher.add(1, {"i": "ok"})
    with pytest.raises(RowError, match="cannot be encoded"):
        batcher.add(2, {"i": "\ud800"})
    # Then the batch goes on without it
    last = batcher.flush()
    assert last is not None and last.rows == [{"i": "ok"}]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Batcher(0, 1000)
    with pytest.raises(ValueError):
        Batcher(10, 5)


# --- properties ---------------------------------------------------------------------------------

rows_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "name", "n", "flag"]),
        st.text(max_size=40)
        | st.integers()
        | st.booleans()
        | st.floats(allow_nan=False, allow_infinity=False),
        min_size=1,
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, max_rows=st.integers(1, 12), max_bytes=st.integers(40, 600))
def test_batches_respect_limits_and_keep_every_row_in_order(
    rows: list[dict[str, Any]], max_rows: int, max_bytes: int
) -> None:
    # Given any rows and limits
    batches = drain(Batcher(max_rows, max_bytes), rows)
    # Then concatenating the batches gives back the input, in order, with its lines
    assert [r for b in batches for r in b.rows] == rows
    assert [line for b in batches for line in b.lines] == list(range(1, len(rows) + 1))
    for batch in batches:
        # And no batch breaks a limit unless it is a single flagged oversize row
        assert 1 <= len(batch.rows) <= max_rows
        assert json.loads(batch.body) == {"schema_rows": batch.rows}
        if batch.oversize:
            assert len(batch.rows) == 1 and len(batch.body) > max_bytes
        else:
            assert len(batch.body) <= max_bytes
    # And batches are greedy: the next batch's first row would not have fitted
    for this, nxt in itertools.pairwise(batches):
        grown = len(this.body) + 1 + len(nxt.encoded[0])
        assert len(this.rows) == max_rows or grown > max_bytes or this.oversize


@settings(max_examples=80, deadline=None)
@given(rows=rows_strategy.filter(lambda r: len(r) >= 2))
def test_split_partitions_a_batch(rows: list[dict[str, Any]]) -> None:
    batch = drain(Batcher(1000, 1_000_000), rows)[0]
    left, right = batch.split()
    assert left.rows + right.rows == batch.rows and left.lines + right.lines == batch.lines
    assert len(left.body) + len(right.body) == len(batch.body) + 18 - 1
