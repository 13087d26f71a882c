"""The block path of the CSV ingest — rows read, encoded and batched many at a time — must be
indistinguishable from the row-by-row path: same lines, same problem rows, same JSON, same batches."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monetate_ingest.delivery.batching import Batcher
from monetate_ingest.formats.coercion import compile_coercer
from monetate_ingest.formats.exceptions import FileFormatError, RowError
from monetate_ingest.formats.readers import open_rows
from monetate_ingest.formats.readers.csv_rows import CellBlock, CsvRows
from monetate_ingest.ingest.units import UnitReader
from monetate_ingest.monetate.schema import SchemaSpec

from local.samples import customers_schema

SCHEMA = SchemaSpec.from_api(customers_schema("c"))
COLUMNS = ["customer_id", "email", "points", "vip", "signup", "tags"]
GOOD = "c1,a@example.com,12,true,2024-05-01T10:00:00Z,gold"


def source(text: str) -> CsvRows:
    rows = open_rows(io.BytesIO(text.encode("utf-8", "surrogateescape")), "incoming/c/f.csv")
    assert isinstance(rows, CsvRows)
    return rows


def flatten(items: Any) -> list[Any]:
    """Blocks opened up into the ``(line, cells)`` pairs ``cell_rows`` yields."""
    out: list[Any] = []
    for item in items:
        if isinstance(item, CellBlock):
            out.extend(zip(item.lines, item.rows, strict=True))
        else:
            out.append(item)
    return out


def items_or_error(items: Any) -> tuple[list[Any], str | None]:
    got: list[Any] = []
    try:
        for item in items:
            got.append(item)
    except FileFormatError as exc:
        return got, str(exc)
    return got, None


cell = st.sampled_from(["a", "", " b ", '"q,1"', '"two\nlines"', '"cr\r\nlf"', '"x"y', "é", "1"])
line = st.lists(cell, min_size=0, max_size=4).map(",".join)
ending = st.sampled_from(["\n", "\r\n", "\r"])


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.tuples(line, ending), max_size=30), size=st.integers(1, 7), skip=st.integers(0, 5))
def test_blocks_are_the_rows_one_by_one(lines: list[tuple[str, str]], size: int, skip: int) -> None:
    # Given any CSV text (quoted line breaks, blank lines, ragged rows, bad quotes, all line ends)
    text = "h1,h2,h3\n" + "".join(a + b for a, b in lines)
    # When it is read in blocks of ``size`` rows (skipping ``skip``) and row by row
    blocks, block_error = items_or_error(source(text).cell_blocks(size, skip=skip))
    rows, row_error = items_or_error(source(text).cell_rows())
    # Then the blocks hold the same rows on the same lines, the problems come in the same places
    assert flatten(blocks) == rows[skip:]
    assert block_error == row_error


def test_blocks_keep_line_numbers_across_multiline_rows_and_problems() -> None:
    text = 'a,b\n1,2\n\n3,"x\ny"\n4\n5,6\n7,"z"w\n8,9\n'
    items = list(source(text).cell_blocks(100))
    assert [type(i).__name__ for i in items] == [
        "CellBlock",
        "SourceRow",
        "CellBlock",
        "SourceRow",
        "CellBlock",
    ]
    assert list(items[0].lines) == [2, 4] and items[1].line == 6  # type: ignore[union-attr]
    assert list(items[2].lines) == [7] and items[3].line == 8  # type: ignore[union-attr]
    assert list(items[4].lines) == [9]  # type: ignore[union-attr]


def test_a_clean_chunk_is_one_block_of_consecutive_lines() -> None:
    text = "a,b\n" + "".join(f"{i},{i}\n" for i in range(10))
    items = list(source(text).cell_blocks(4))
    assert [list(i.lines) for i in items] == [[2, 3, 4, 5], [6, 7, 8, 9], [10, 11]]  # type: ignore[union-attr]


def test_a_runaway_field_ends_the_file_after_the_rows_before_it() -> None:
    # a quote that never closes, past the field limit, swallowing the row after it
    text = 'a,b\n1,2\n3,"' + "x" * 100 + "\n4,5\n"
    rows = open_rows(io.BytesIO(text.encode()), "incoming/c/f.csv", max_field_bytes=50)
    assert isinstance(rows, CsvRows)
    items, error = items_or_error(rows.cell_blocks(10))
    assert flatten(items) == [(2, ["1", "2"])]
    assert error is not None and "line 3" in error


def test_undecodable_bytes_are_found_in_a_block() -> None:
    text = "a,b\n1,2\n3,\udcff\n5,6\n"
    items = list(source(text).cell_blocks(10))
    problems = [i for i in items if not isinstance(i, CellBlock)]
    assert [p.line for p in problems] == [3] and "UTF-8" in (problems[0].error or "")
    assert flatten(i for i in items if isinstance(i, CellBlock)) == [(2, ["1", "2"]), (4, ["5", "6"])]


row_cells = st.lists(
    st.sampled_from(
        ["c1", " c2 ", "", "x@y", "12", "1.5", "abc", "true", "no", "maybe", "2024-05-01", "a,b"]
    ),
    min_size=6,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(row_cells, min_size=1, max_size=12))
def test_encode_block_is_each_row_encoded_or_none(rows: list[list[str]]) -> None:
    # Given a coercer for the six columns
    coercer = compile_coercer(SCHEMA, COLUMNS)
    assert coercer.encode_block is not None and coercer.encode_cells is not None
    # When the rows are encoded as a block and one by one
    block = coercer.encode_block(rows)
    singles: list[bytes | None] = []
    for cells in rows:
        try:
            singles.append(coercer.encode_cells(cells))
        except RowError:
            singles.append(None)
    # Then a block that encodes is exactly the rows' encodings (empty optional cells left out);
    # only a row the row path refuses, or one without its identifier, sends the block row by row
    without_identifier = any(not cells[0].strip() for cells in rows)
    if None in singles or without_identifier:
        assert block is None
    else:
        assert block == singles


def test_encode_block_leaves_out_empty_optional_cells() -> None:
    coercer = compile_coercer(SCHEMA, COLUMNS)
    assert coercer.encode_block is not None and coercer.encode_cells is not None
    rows = [
        ["c1", "", "7", " ", "", "a"],
        ["c2", "x@y", "", "yes", "2024-05-01", ""],
        ["c3", "", "", "", "", ""],
    ]
    block = coercer.encode_block(rows)
    assert block == [coercer.encode_cells(r) for r in rows]
    assert block is not None and json.loads(block[2]) == {"customer_id": "c3"}


def test_encode_block_with_columns_out_of_order() -> None:
    columns = ["tags", "extra", "vip", "customer_id", "points"]
    coercer = compile_coercer(SCHEMA, columns, unknown="ignore")
    assert coercer.encode_block is not None and coercer.encode_cells is not None
    rows = [["gold, tier1", "zzz", "Yes", "c1", "42"], ["a", "b", "no", "c2", "7"]]
    assert coercer.encode_block(rows) == [coercer.encode_cells(r) for r in rows]


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 60), min_size=1, max_size=40),
    runs=st.lists(st.integers(1, 9), min_size=1, max_size=10),
    max_rows=st.integers(1, 8),
    max_bytes=st.integers(40, 300),
)
def test_add_run_batches_like_add_encoded(
    sizes: list[int], runs: list[int], max_rows: int, max_bytes: int
) -> None:
    # Given encoded rows of various sizes, cut into runs
    encoded = [b'"' + b"x" * (n - 2) + b'"' if n >= 2 else b"1" for n in sizes]
    one, many = Batcher(max_rows, max_bytes), Batcher(max_rows, max_bytes)
    # When they are added one by one, and run by run
    by_row = [b for i, data in enumerate(encoded) if (b := one.add_encoded(i, data)) is not None]
    by_run = []
    start = 0
    lines = list(range(len(encoded)))
    for length in runs * len(encoded):
        if start >= len(encoded):
            break
        end = min(len(encoded), start + length)
        part = encoded[start:end]
        at = 0
        while at < len(part):
            taken, full = many.add_run(lines[start : start + len(part)], part, at)
            assert taken >= 1
            if full is not None:
                by_run.append(full)
            at += taken
        start = end
    # Then the batches are the same
    for batcher, out in ((one, by_row), (many, by_run)):
        last = batcher.flush()
        if last is not None:
            out.append(last)
    assert [(b.lines, b.body, b.oversize) for b in by_run] == [(b.lines, b.body, b.oversize) for b in by_row]


def _read(text: str, size: int, max_rows: int) -> tuple[list[Any], list[tuple[int, int, list[int]]]]:
    """Units from ``text`` through the block path (size > 0) or row by row (size 0)."""
    src = source(text)
    coercer = compile_coercer(SCHEMA, src.header() or [])
    units: list[Any] = []
    reader = UnitReader(
        Batcher(max_rows, 1_000_000),
        coercer,
        src.header() or [],
        0,
        submit=units.append,
        pause=lambda: None,
        out_of_time=lambda: False,
    )
    reader.read(src.cell_blocks(size) if size else src.cell_rows())
    summary = [(u.seq, u.rows, u.batch.lines if u.batch else []) for u in units]
    return [r for u in units for r in u.rejects], summary


@pytest.mark.parametrize("size", [1, 3, 16, 500])
def test_unit_reader_blocks_match_rows_with_rejects_in_the_middle(size: int) -> None:
    # Given 40 rows with a bad number on line 12, a missing identifier on 25, a ragged row on 31
    lines = [GOOD.replace("c1", f"c{i}") for i in range(40)]
    lines[10] = lines[10].replace(",12,", ",twelve,")
    lines[23] = "," + lines[23].split(",", 1)[1]
    lines[29] = "only,three,cells"
    text = ",".join(COLUMNS) + "\n" + "\n".join(lines) + "\n"
    # When it is read in blocks and row by row
    # Then the rejects (with their lines) and the units are the same
    assert _read(text, size, max_rows=7) == _read(text, 0, max_rows=7)
    rejects, units = _read(text, size, max_rows=7)
    assert [json.loads(r)["line"] for r in rejects] == [12, 25, 31]
    assert sum(u[1] for u in units) == 40
