"""The fast paths of the CSV ingest: rows encoded straight from cells, batches of encoded rows.
Each must be indistinguishable from the plain path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.formats.coercion import compile_coercer
from monetate_ingest.formats.encoding import encode_row
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.schema import SchemaSpec

from local.samples import customers_schema

SCHEMA = SchemaSpec.from_api(customers_schema("c"))
COLUMNS = ["customer_id", "email", "points", "vip", "signup", "tags"]
CELLS = [
    "", " ", "x", " 1 ", "1.5", "-0", "nan", "1,000", "1e400", "true", "NO", "maybe",
    "2024-05-01", "2024-05-01T10:00:00+02:00", "2024/05/01 10:00", ",,", " a , b ", "a\\,b",
    "é€", '"q"', "%s", "%%", "\x00\n", "\U0001f600",
]  # fmt: skip


def plain(coercer: Any, cells: list[str]) -> bytes | str:
    """What the dict path gives: the encoded row, or the RowError's reason."""
    try:
        return encode_row(coercer.coerce_cells(cells)).encode()
    except RowError as exc:
        return exc.reason


def fast(coercer: Any, cells: list[str]) -> bytes | str:
    try:
        data: bytes = coercer.encode_cells(cells)
    except RowError as exc:
        return exc.reason
    return data


@settings(max_examples=400, deadline=None)
@given(cells=st.lists(st.sampled_from(CELLS) | st.text(max_size=12), min_size=6, max_size=6))
def test_encode_cells_is_the_encoded_coerced_row(cells: list[str]) -> None:
    # Given a coercer for the CSV columns in schema order
    coercer = compile_coercer(SCHEMA, COLUMNS)
    assert coercer.encode_cells is not None
    # When a row is encoded straight from its cells, twice (the second time from the memos)
    # Then it is byte for byte the encoded coerced row, or the same reject reason
    assert fast(coercer, cells) == plain(coercer, cells)
    assert fast(coercer, cells) == plain(coercer, cells)


def test_encode_cells_with_columns_out_of_order_and_ignored() -> None:
    # Given columns in another order, one of them not a field (ignored)
    columns = ["tags", "extra", "vip", "customer_id", "points"]
    coercer = compile_coercer(SCHEMA, columns, unknown="ignore")
    assert coercer.encode_cells is not None
    row = ["gold, tier1", "zzz", "Yes", "c1", "42"]
    # Then the row is the same JSON, with the fields in the plan's order
    assert coercer.encode_cells(row) == encode_row(coercer.coerce_cells(row)).encode()  # type: ignore[misc]
    assert json.loads(coercer.encode_cells(row)) == {
        "tags": "gold,tier1",
        "vip": True,
        "customer_id": "c1",
        "points": 42,
    }


def test_encode_cells_rejects_like_the_dict_path() -> None:
    coercer = compile_coercer(SCHEMA, COLUMNS)
    assert coercer.encode_cells is not None
    # A bad number, a missing identifier, text that is not UTF-8-encodable
    for cells in (
        ["c1", "e", "12abc", "true", "2024-05-01", "a"],
        ["", "e", "1", "true", "2024-05-01", "a"],
        ["c1", "\ud800", "1", "true", "2024-05-01", "a"],
    ):
        with pytest.raises(RowError) as fast_error:
            coercer.encode_cells(cells)
        if "\ud800" in cells:
            assert "cannot be encoded as JSON" in fast_error.value.reason
            continue
        with pytest.raises(RowError) as plain_error:
            coercer.coerce_cells(cells)  # type: ignore[misc]
        assert (fast_error.value.reason, fast_error.value.field) == (
            plain_error.value.reason,
            plain_error.value.field,
        )


def test_no_direct_encoder_when_a_required_field_has_no_column() -> None:
    coercer = compile_coercer(SCHEMA, ["email", "points"], unknown="ignore")
    assert coercer.encode_cells is None


rows_strategy = st.lists(
    st.dictionaries(
        st.sampled_from(["id", "name", "n"]),
        st.text(max_size=30) | st.integers() | st.booleans(),
        min_size=1,
    ),
    max_size=40,
)


def drain(batcher: Batcher, rows: list[dict[str, Any]], *, encoded: bool) -> list[Batch]:
    out: list[Batch] = []
    for i, row in enumerate(rows, 1):
        full = batcher.add_encoded(i, encode_row(row).encode()) if encoded else batcher.add(i, row)
        if full is not None:
            out.append(full)
    last = batcher.flush()
    return out + ([last] if last else [])


@settings(max_examples=150, deadline=None)
@given(rows=rows_strategy, max_rows=st.integers(1, 10), max_bytes=st.integers(40, 400))
def test_add_encoded_batches_like_add(rows: list[dict[str, Any]], max_rows: int, max_bytes: int) -> None:
    # Given the same rows, once as dicts and once already encoded
    by_dict = drain(Batcher(max_rows, max_bytes), rows, encoded=False)
    by_bytes = drain(Batcher(max_rows, max_bytes), rows, encoded=True)
    # Then the batches are the same: bodies, lines, oversize flags, and (decoded) rows
    assert [(b.body, b.lines, b.oversize) for b in by_bytes] == [
        (b.body, b.lines, b.oversize) for b in by_dict
    ]
    assert [b.rows for b in by_bytes] == [b.rows for b in by_dict]
    for batch in by_bytes:
        if len(batch) >= 2:
            left, right = batch.split()
            assert left.rows + right.rows == batch.rows and left.lines + right.lines == batch.lines
            assert left.body == Batch.of(None, left.lines, left.encoded).body


def test_mixed_batch_decodes_only_when_asked() -> None:
    batcher = Batcher(10, 10_000)
    batcher.add(1, {"a": 1})
    batcher.add_encoded(2, b'{"b":"\xc3\xa9"}')
    batch = batcher.flush()
    assert batch is not None and batch._rows is None
    assert (
        batch.rows == [{"a": 1}, {"b": "é"}] and batch.body == b'{"schema_rows":[{"a":1},{"b":"\xc3\xa9"}]}'
    )
