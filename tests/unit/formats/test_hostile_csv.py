"""CSV rows that break the parser reject that row, not the file — and never hide other rows.

A field over ``max_field_bytes`` (bytes of UTF-8, default 1 MiB) rejects its row, naming the
field, and reading goes on after it, however many lines the field takes. A quote that never
closes and swallows the lines after it fails the file naming its line. Every path (iteration,
``cell_rows``, ``cell_blocks``) agrees.
"""

from __future__ import annotations

import gzip
import io
import tracemalloc
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers import DEFAULT_MAX_FIELD_BYTES, SourceRow, open_rows
from monetate_ingest.formats.readers.csv_rows import CellBlock, CsvRows
from monetate_ingest.formats.readers.decompress import LongLines

MIB = 1024 * 1024


def source(data: bytes | str, key: str = "f.csv", **kw: Any) -> CsvRows:
    raw = data.encode() if isinstance(data, str) else data
    rows = open_rows(io.BytesIO(raw), key, **kw)
    assert isinstance(rows, CsvRows)
    return rows


def items(src: CsvRows, path: str = "blocks", size: int = 500, into: list[Any] | None = None) -> list[Any]:
    """``(line, cells)`` for good rows and :class:`SourceRow` for problems, from any path
    (appended to ``into`` as they come, so a test sees what came before an error)."""
    out: list[Any] = [] if into is None else into
    if path == "rows":
        for row in src:
            out.append(row if row.error else (row.line, list(row.values.values())))  # type: ignore[union-attr]
    elif path == "cells":
        out.extend(src.cell_rows())
    else:
        for item in src.cell_blocks(size):
            if isinstance(item, CellBlock):
                out.extend(zip(item.lines, item.rows, strict=True))
            else:
                out.append(item)
    return out


def problems(got: list[Any]) -> list[tuple[int, str]]:
    return [(i.line, i.error) for i in got if isinstance(i, SourceRow)]


def good(got: list[Any]) -> list[tuple[int, list[str]]]:
    return [i for i in got if not isinstance(i, SourceRow)]


PATHS = ["blocks", "cells", "rows"]


# --- an unterminated quote ----------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_unterminated_quote_on_line_2_of_49_fails_the_file_naming_the_lines_it_swallowed(path: str) -> None:
    # Given 49 rows under a header, the quote opened on line 2 never closing
    lines = ["id,note"] + [f"{n},note {n}" for n in range(2, 51)]
    lines[1] = '2,"oops'
    got: list[Any] = []
    # When it is read
    with pytest.raises(FileFormatError) as info:
        items(source("\n".join(lines) + "\n"), path, into=got)
    # Then no row is passed off as read: the file fails at line 2, naming the column and the lines
    assert got == []
    assert info.value.line == 2
    message = str(info.value)
    assert message.startswith("line 2: unterminated quote — a quoted field in column 2 ('note')")
    assert "lines 2-50 were read as one field" in message and "upload the file again" in message


def test_unterminated_quote_after_good_rows_fails_after_them() -> None:
    text = 'id,note\n1,a\n2,b\n3,"open\n4,d\n'
    got: list[Any] = []
    with pytest.raises(FileFormatError, match="line 4: unterminated quote"):
        items(source(text), into=got)
    assert good(got) == [(2, ["1", "a"]), (3, ["2", "b"])]


def test_a_quote_closing_badly_lines_later_rejects_one_row_naming_the_lines() -> None:
    # Given a stray quote on line 2 that a quote on line 4 closes badly
    text = 'id,note\n2,"stray\n3,swallowed\n4,x"y\n5,after\n'
    got = items(source(text))
    # Then one reject at line 2 names the lines it took, and line 5 is read
    assert problems(got) == [
        (
            2,
            "row has a malformed quoted field (',' expected after '\"'); double any quote inside "
            "a quoted field; lines 2-4 were read as this one row",
        )
    ]
    assert got[0].raw == '2,"stray\n3,swallowed\n4,x"y\n'
    assert good(got) == [(5, ["5", "after"])]


# --- a field over the size limit ----------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_a_5_mb_quoted_field_rejects_its_row_and_reading_goes_on(path: str) -> None:
    # Given a 5 MB quoted field on line 3, between good rows
    big = "x" * (5 * MIB)
    text = f'id,note\n1,a\n2,"{big}"\n3,b\n4,"c,d"\n'
    # When it is read with the default limit
    got = items(source(text), path)
    # Then that row is rejected naming the field and the limit, and the others are read
    assert problems(got) == [
        (3, "field 2 ('note') is longer than the limit of 1,048,576 bytes (MAX_FIELD_BYTES)")
    ]
    assert good(got) == [(2, ["1", "a"]), (4, ["3", "b"]), (5, ["4", "c,d"])]
    reject = next(i for i in got if isinstance(i, SourceRow))
    assert reject.raw == '2,"' + "x" * 197 + "…"  # a preview, not 5 MB


@pytest.mark.parametrize("path", PATHS)
def test_an_oversize_quoted_field_over_many_lines_is_read_past_to_its_closing_quote(path: str) -> None:
    # Given a 5 MB quoted field of 5,000 lines (with commas and doubled quotes inside) on line 3
    body = ('a, ""quoted"" line\n' * 5000).rstrip("\n") + "x" * (5 * MIB)
    text = f'id,note\n1,a\n2,"{body}"\n3,"b\nc"\n4,d\n'
    # When it is read
    got = items(source(text), path)
    # Then one reject names the lines it took, and the rows after it start on their own lines
    assert problems(got) == [
        (3, "field 2 ('note') is longer than the limit of 1,048,576 bytes (MAX_FIELD_BYTES); "
         "the row (lines 3-5002) was skipped")
    ]  # fmt: skip
    assert good(got) == [(2, ["1", "a"]), (5003, ["3", "b\nc"]), (5005, ["4", "d"])]


def test_an_oversize_field_is_read_past_without_being_held() -> None:
    # Given a 40 MB quoted field of 40,000 lines
    text = 'id,note\n1,"' + ("y" * 1000 + "\n") * 40_000 + '"\n2,b\n'
    data = text.encode()
    # When it is read
    tracemalloc.start()
    try:
        got = items(source(data))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Then it is rejected, the next row read, and no more than a few limits' worth was held
    assert [p[0] for p in problems(got)] == [2] and good(got) == [(40_003, ["2", "b"])]
    assert peak < 8 * DEFAULT_MAX_FIELD_BYTES


def test_an_oversize_unquoted_field_rejects_its_row() -> None:
    got = items(source("id,note\n1," + "z" * (2 * MIB) + "\n2,b\n"))
    assert problems(got) == [
        (2, "field 2 ('note') is longer than the limit of 1,048,576 bytes (MAX_FIELD_BYTES)")
    ]
    assert good(got) == [(3, ["2", "b"])]


def test_an_oversize_quoted_field_that_never_closes_fails_the_file() -> None:
    text = 'id,note\n1,a\n2,"' + ("w" * 1000 + "\n") * 2000 + "3,c\n"
    got: list[Any] = []
    with pytest.raises(FileFormatError, match="line 3: unterminated quote") as info:
        items(source(text), into=got)
    assert good(got) == [(2, ["1", "a"])]
    assert "lines 3-2003 were read as one field" in str(info.value)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("limit", "rejected"), [(99, True), (100, False)])
def test_the_limit_is_configurable_and_a_field_of_exactly_the_limit_fits(
    path: str, limit: int, rejected: bool
) -> None:
    # Given a 100-byte field, read with a limit of 99 and of 100 bytes
    text = "id,note\n1," + "n" * 100 + "\n2,b\n"
    got = items(source(text, max_field_bytes=limit), path)
    # Then only the smaller limit rejects it, saying so
    expected = [(2, f"field 2 ('note') is longer than the limit of {limit} bytes (MAX_FIELD_BYTES)")]
    assert problems(got) == (expected if rejected else [])
    assert good(got)[-1] == (3, ["2", "b"])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("spread", ["one line", "two lines"])
def test_the_limit_counts_bytes_not_characters(path: str, spread: str) -> None:
    # Given a field of 60 two-byte characters (120 bytes, 60 characters), read with a 100-byte limit
    cell = "é" * 60 if spread == "one line" else '"' + "é" * 30 + "\n" + "é" * 30 + '"'
    text = f"id,note\n1,{cell}\n2,b\n3,{'é' * 50}\n"
    got = items(source(text, max_field_bytes=100), path)
    # Then its row is rejected with its size, and a 100-byte field of them is not
    size = 120 if spread == "one line" else 121
    assert problems(got) == [
        (2, f"field 2 ('note') is {size} bytes, longer than the limit of 100 bytes (MAX_FIELD_BYTES)")
    ]
    last = 3 if spread == "one line" else 4
    assert good(got) == [(last, ["2", "b"]), (last + 1, ["3", "é" * 50])]


def test_the_byte_limit_holds_through_gzip() -> None:
    data = gzip.compress(("id,note\n1," + "ß" * 700_000 + "\n2,b\n").encode())
    got = items(source(data, "f.csv.gz"))
    assert problems(got) == [
        (2, "field 2 ('note') is 1,400,000 bytes, longer than the limit of 1,048,576 bytes (MAX_FIELD_BYTES)")
    ]
    assert good(got) == [(3, ["2", "b"])]


def test_two_readers_keep_their_own_limits_when_read_in_turns() -> None:
    # Given two files read a row at a time in turns, one with a limit of 10 and one of 1,000
    text = "id,note\n" + "".join(f"{i},{'m' * 50}\n" for i in range(4))
    small, large = source(text, max_field_bytes=10).cell_blocks(1), source(text).cell_blocks(1)
    taken = [(next(small), next(large)) for _ in range(4)]
    # Then every row of the first is rejected and none of the second
    assert all(isinstance(a, SourceRow) and isinstance(b, CellBlock) for a, b in taken)


def test_a_limit_under_one_byte_is_refused() -> None:
    with pytest.raises(ValueError, match="max_field_bytes must be at least 1"):
        source("id\n1\n", max_field_bytes=0)


# --- long lines in the byte stream --------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "moved"),
    [
        ([b"a" * 6 + b"\n" + b"b" * 9 + b"\n"], False),
        ([b"a" * 6, b"aaaa\n"], False),
        ([b"a" * 6, b"aaaaa\n"], True),
        ([b"ab\n" + b"c" * 11 + b"\nd"], True),
        ([b"a" * 11], True),
    ],
)
def test_long_lines_are_counted_across_chunks(chunks: list[bytes], moved: bool) -> None:
    # Given a 10-byte limit and bytes arriving in chunks
    lines = LongLines(10)
    for chunk in chunks:
        lines.see(chunk)
    # Then the count moves only for a line of more than 10 bytes
    assert (lines.count > 0) is moved


# --- every path agrees --------------------------------------------------------------------------

cell = st.sampled_from(
    ["", "a", "é" * 4, "x" * 9, '"q,1"', '"two\nlines"', '"é\n' + "é" * 5 + '"', '"x"y', '"']
)
line = st.lists(cell, min_size=0, max_size=3).map(",".join)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(line, max_size=20), limit=st.integers(1, 12), size=st.integers(1, 5))
def test_every_path_agrees_under_any_limit(lines: list[str], limit: int, size: int) -> None:
    # Given any CSV text (long cells, multi-byte cells, quotes opened and never closed)
    text = "h1,h2,h3\n" + "".join(f"{ln}\n" for ln in lines)

    def outcome(path: str) -> tuple[list[Any], str | None]:
        got: list[Any] = []
        try:
            items(source(text, max_field_bytes=limit), path, size, into=got)
        except FileFormatError as exc:
            return got, str(exc)
        return got, None

    # When it is read in blocks, as cells and as rows, under a small limit
    blocks = outcome("blocks")
    # Then the paths give the same rows, problems and file error, and no field over the limit passes
    assert outcome("cells") == blocks
    assert outcome("rows") == blocks
    assert all(len(c.encode()) <= limit for _, cells in good(blocks[0]) for c in cells)
