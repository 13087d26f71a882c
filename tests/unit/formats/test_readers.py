"""Streaming readers: formats, line numbers and every kind of broken input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers import SourceRow, detect_format, open_rows
from monetate_ingest.formats.readers import decompress as decompress_mod

LIMITS: dict[str, Any] = {"max_decompressed_bytes": 1 << 30, "max_compression_ratio": 200}


def read(data: bytes, key: str = "incoming/s/f.csv", **kw: Any) -> list[SourceRow]:
    return list(open_rows(io.BytesIO(data), key, **{**LIMITS, **kw}))


def good(rows: list[SourceRow]) -> list[tuple[int, dict[str, Any] | None]]:
    return [(r.line, r.values) for r in rows]


class Trickle(io.RawIOBase):
    """A stream that hands out a few bytes per read, like a slow network body."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data, self._pos, self._step = data, 0, step

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        n = self._step if size < 0 else min(size, self._step)
        chunk = self._data[self._pos : self._pos + n]
        self._pos += len(chunk)
        return chunk


# --- format detection ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.CSV.gz", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson.gz", "jsonl"),
        ("a.json", "json"),
        ("x/y.json.gz", "json"),
    ],
)
def test_format_by_suffix(key: str, fmt: str) -> None:
    assert detect_format(key) == fmt


def test_unknown_suffix_is_a_file_error() -> None:
    with pytest.raises(FileFormatError, match=r"\.csv, \.jsonl, \.ndjson or \.json"):
        open_rows(io.BytesIO(b"a"), "a.xlsx", **LIMITS)


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_rows_with_header_line_numbers() -> None:
    # Given a small CSV
    src = open_rows(io.BytesIO(b"id,name\n1,Ann\n2,Bob\n"), "f.csv", **LIMITS)
    # When the header and rows are read
    assert src.header() == ["id", "name"]
    rows = list(src)
    # Then rows start at line 2 and raw is the {header: cell} dict
    assert src.format == "csv" and src.columns == ["id", "name"]
    assert good(rows) == [(2, {"id": "1", "name": "Ann"}), (3, {"id": "2", "name": "Bob"})]
    assert rows[0].raw == {"id": "1", "name": "Ann"} and rows[0].error is None


def test_csv_columns_known_after_first_row() -> None:
    src = open_rows(io.BytesIO(b"a,b\n1,2\n"), "f.csv", **LIMITS)
    assert src.columns is None
    next(iter(src))
    assert src.columns == ["a", "b"]


def test_csv_bom_and_crlf() -> None:
    # Given a UTF-8 BOM and Windows line ends
    rows = read(b"\xef\xbb\xbfid,name\r\n1,Ann\r\n2,Z\xc3\xa9\r\n")
    # Then the BOM is not part of the first column and CR is not part of the last
    assert good(rows) == [(2, {"id": "1", "name": "Ann"}), (3, {"id": "2", "name": "Zé"})]


def test_csv_quoted_commas_and_newlines_keep_line_numbers() -> None:
    # Given a quoted field spanning three lines
    data = b'id,note\n1,"a, b"\n2,"line1\nline2\nline3"\n3,"say ""hi"""\n'
    rows = read(data)
    # Then the row after it starts on the right physical line
    assert good(rows) == [
        (2, {"id": "1", "note": "a, b"}),
        (3, {"id": "2", "note": "line1\nline2\nline3"}),
        (6, {"id": "3", "note": 'say "hi"'}),
    ]


def test_csv_blank_lines_are_skipped_but_counted() -> None:
    rows = read(b"id\n\n1\n\n\n2\n")
    assert good(rows) == [(3, {"id": "1"}), (6, {"id": "2"})]


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_csv_configurable_delimiter(delimiter: str) -> None:
    d = delimiter.encode()
    rows = read(b"id" + d + b"name\n1" + d + b'"x' + d + b'y"\n', delimiter=delimiter)
    assert good(rows) == [(2, {"id": "1", "name": "x" + delimiter + "y"})]


def test_csv_ragged_rows_are_row_errors() -> None:
    # Given rows with too many and too few cells
    rows = read(b"a,b,c\n1,2,3,4\n1,2\n7,8,9\n")
    # Then each is an error row carrying its cells, and reading continues
    assert rows[0] == SourceRow(2, None, ["1", "2", "3", "4"], "row has 4 fields but the header has 3")
    assert rows[1] == SourceRow(3, None, ["1", "2"], "row has 2 fields but the header has 3")
    assert good(rows[2:]) == [(4, {"a": "7", "b": "8", "c": "9"})]


def test_csv_unterminated_quote_on_the_last_line_is_a_row_error() -> None:
    # Given a quote opened on the last line and never closed (only blank lines after it)
    rows = read(b'a,b\n1,2\n3,"oops\n\n')
    # Then the rows before it are fine and that row is an error naming the column, not a crash
    assert good(rows[:1]) == [(2, {"a": "1", "b": "2"})]
    assert rows[1].line == 3 and rows[1].values is None
    assert (
        rows[1].error
        == "row opens a quoted field in column 2 ('b') that is never closed (unterminated quote)"
    )
    assert rows[1].raw == '3,"oops\n\n'
    assert len(rows) == 2


def test_csv_unterminated_quote_that_swallows_rows_fails_the_file_naming_its_line() -> None:
    # Given a quote opened on line 3 that swallows line 4 to the end of the file
    got: list[SourceRow] = []
    # When it is read
    with pytest.raises(FileFormatError) as info:
        got.extend(open_rows(io.BytesIO(b'a,b\n1,2\n3,"oops\n4,5\n'), "f.csv", **LIMITS))
    # Then the row before it came out, and the file fails at line 3 saying which lines it swallowed
    assert good(got) == [(2, {"a": "1", "b": "2"})]
    assert info.value.line == 3
    assert str(info.value).startswith("line 3: unterminated quote")
    assert "lines 3-4 were read as one field" in str(info.value)


def test_csv_malformed_quote_is_a_row_error_and_reading_goes_on() -> None:
    rows = read(b'a,b\n1,"x"y\n2,3\n')
    assert rows[0].line == 2 and "quoted field" in (rows[0].error or "")
    assert good(rows[1:]) == [(3, {"a": "2", "b": "3"})]


def test_csv_invalid_utf8_is_a_row_error_for_that_line() -> None:
    # Given a Latin-1 byte on line 3
    rows = read(b"id,name\n1,Ann\n2,Ren\xe9\n3,Bo\n")
    # Then only line 3 is refused, naming the byte
    assert good(rows[:1]) == [(2, {"id": "1", "name": "Ann"})]
    assert rows[1].line == 3 and rows[1].values is None
    assert rows[1].error == "row is not valid UTF-8 (bytes 0xe9)"
    assert rows[1].raw == ["2", "Ren\ufffd"]
    assert json.dumps(rows[1].raw, ensure_ascii=False)  # serialisable for the rejects file
    assert good(rows[2:]) == [(4, {"id": "3", "name": "Bo"})]


def test_csv_invalid_utf8_in_header_is_a_file_error() -> None:
    with pytest.raises(FileFormatError, match="header is not valid UTF-8") as info:
        read(b"id,n\xffme\n1,2\n")
    assert info.value.line == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"id,name,id\n1,2,3\n", "repeats column names 'id'"),
        (b"id,,name\n1,2,3\n", "empty column names at position 2"),
        (b"id, ,name\n1,2,3\n", "empty column names at position 2"),
    ],
)
def test_csv_bad_header_is_a_file_error(data: bytes, message: str) -> None:
    with pytest.raises(FileFormatError, match=message):
        read(data)


def test_csv_from_a_trickling_stream() -> None:
    data = b'id,note\n1,"a\nb"\n2,x\n'
    rows = list(open_rows(Trickle(data), "f.csv", **LIMITS))  # type: ignore[arg-type]
    assert good(rows) == [(2, {"id": "1", "note": "a\nb"}), (4, {"id": "2", "note": "x"})]


# --- gzip ---------------------------------------------------------------------------------------


def test_gzip_by_suffix_and_by_magic_bytes() -> None:
    # Given gzip data under a .csv.gz key and under a plain .csv key
    data = gzip.compress(b"id\n1\n2\n")
    # Then both are decompressed
    assert good(read(data, "f.csv.gz")) == [(2, {"id": "1"}), (3, {"id": "2"})]
    assert good(read(data, "f.csv")) == [(2, {"id": "1"}), (3, {"id": "2"})]


def test_gzip_with_several_members() -> None:
    data = gzip.compress(b"id\n1\n") + gzip.compress(b"2\n")
    assert good(read(data, "f.csv.gz")) == [(2, {"id": "1"}), (3, {"id": "2"})]


def test_truncated_gzip_fails_after_the_rows_read() -> None:
    # Given a gzip file cut short
    body = b"id,name\n" + b"".join(b"%d,name-%d\n" % (i, i) for i in range(20000))
    data = gzip.compress(body)[:-2000]
    # When it is read
    got: list[SourceRow] = []
    with pytest.raises(FileFormatError, match=r"gzip stream is truncated.*after \d+ bytes"):
        for row in open_rows(io.BytesIO(data), "f.csv.gz", **LIMITS):
            got.append(row)
    # Then the complete rows before the cut were yielded, in order, none invented
    assert got, "rows before the cut come out first"
    assert all(r.error is None for r in got)
    assert [r.line for r in got] == list(range(2, len(got) + 2))
    assert got[-1].values == {"id": str(len(got) - 1), "name": f"name-{len(got) - 1}"}


def test_corrupt_gzip_is_a_file_error() -> None:
    data = bytearray(gzip.compress(b"id\n" + b"1\n" * 1000))
    data[20:30] = b"\xff" * 10
    with pytest.raises(FileFormatError, match="gzip"):
        read(bytes(data), "f.csv.gz")


def test_bomb_over_the_byte_limit_is_refused() -> None:
    data = gzip.compress(b"id\n" + b"1\n" * 100_000)
    with pytest.raises(FileFormatError, match="MAX_DECOMPRESSED_BYTES"):
        read(data, "f.csv.gz", max_decompressed_bytes=50_000)


def test_bomb_over_the_ratio_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a highly compressible file and the ratio check starting early (to keep the test small)
    monkeypatch.setattr(decompress_mod, "RATIO_CHECK_AFTER", 100_000)
    data = gzip.compress(b"id\n" + b"1\n" * 500_000)
    # Then it is refused by ratio
    with pytest.raises(FileFormatError, match="MAX_COMPRESSION_RATIO"):
        read(data, "f.csv.gz", max_compression_ratio=50)


def test_small_compressible_file_is_fine_despite_ratio() -> None:
    data = gzip.compress(b"id\n" + b"1\n" * 50_000)
    assert len(read(data, "f.csv.gz", max_compression_ratio=2)) == 50_000


# --- JSON lines ---------------------------------------------------------------------------------


def test_jsonl_objects_blank_lines_and_bad_lines() -> None:
    # Given objects, a blank line, an array, broken JSON and a string
    data = b'{"id": 1}\n\n[1, 2]\n{"id": \n"text"\r\n{"id": 2}\n'
    rows = read(data, "f.jsonl")
    # Then good lines are objects and each bad one is a row error with its text
    assert rows[0] == SourceRow(1, {"id": 1}, '{"id": 1}', None)
    assert rows[1] == SourceRow(3, None, "[1, 2]", "line is a JSON array, expected an object")
    assert rows[2].line == 4 and (rows[2].error or "").startswith("line is not valid JSON: ")
    assert rows[3] == SourceRow(5, None, '"text"', "line is a JSON string, expected an object")
    assert rows[4] == SourceRow(6, {"id": 2}, '{"id": 2}', None)


def test_jsonl_gzip_with_bom() -> None:
    data = gzip.compress(b'\xef\xbb\xbf{"a": "x"}\n{"a": "y"}')
    src = open_rows(io.BytesIO(data), "f.ndjson.gz", **LIMITS)
    assert src.format == "jsonl" and src.columns is None
    assert good(list(src)) == [(1, {"a": "x"}), (2, {"a": "y"})]


def test_jsonl_invalid_utf8_line() -> None:
    rows = read(b'{"a": "ok"}\n{"a": "\xff"}\n{"a": "fine"}\n', "f.jsonl")
    assert rows[1].line == 2 and rows[1].error == "line is not valid UTF-8 (bytes 0xff)"
    assert good([rows[0], rows[2]]) == [(1, {"a": "ok"}), (3, {"a": "fine"})]


# --- JSON arrays --------------------------------------------------------------------------------


def test_json_array_elements_by_index() -> None:
    # Given an array with objects and a non-object element
    rows = read(b' [ {"id": 1},\n 2 , {"id": "x", "t": [1, {"n": null}]} ] \n', "f.json")
    # Then lines are 1-based indexes and the number is a row error
    assert rows[0] == SourceRow(1, {"id": 1}, {"id": 1}, None)
    assert rows[1] == SourceRow(2, None, 2, "element is a JSON number, expected an object")
    assert good(rows[2:]) == [(3, {"id": "x", "t": [1, {"n": None}]})]


def test_json_empty_array() -> None:
    assert read(b"[]", "f.json") == []


def test_json_array_parsed_incrementally_across_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given tiny text chunks so that elements, strings and numbers straddle chunk edges
    from monetate_ingest.formats.readers import json_rows

    monkeypatch.setattr(json_rows, "TEXT_CHUNK", 3)
    elements = [{"id": i, "n": 123456789 + i, "s": "x" * (i % 7), "f": 1.5e10} for i in range(50)]
    rows = read(json.dumps(elements).encode(), "f.json")
    # Then every element comes back whole
    assert [r.values for r in rows] == elements


def test_json_large_array_memory_is_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a big array, the splitter's buffer never holds more than about a chunk
    from monetate_ingest.formats.readers import json_rows

    src = open_rows(io.BytesIO(json.dumps([{"i": i} for i in range(100_000)]).encode()), "f.json", **LIMITS)
    assert isinstance(src, json_rows.JsonArrayRows)
    biggest = 0
    for _ in src:
        biggest = max(biggest, len(src._buf))
    assert biggest <= 2 * json_rows.TEXT_CHUNK


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"id": 1}', "must hold one JSON array"),
        (b"", "is empty"),
        (b'[{"id": 1} {"id": 2}]', "expected ',' or ']'"),
        (b'[{"id": 1}, {"id": 2}', "followed by the end of the file"),
        (b'[{"id": 1}] x', "followed by more data"),
        (b'[{"id": 1}, {bad}]', "element 2 is not valid JSON"),
    ],
)
def test_json_array_broken_files(data: bytes, message: str) -> None:
    with pytest.raises(FileFormatError, match=message):
        read(data, "f.json")


# --- properties ---------------------------------------------------------------------------------

# csv.writer leaves a lone "\r" unquoted when the line terminator is "\n", so cells avoid it
cell = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"), max_size=12
)
cells = st.sampled_from(["", ",", '"', "\n", "\r\n", " a ", "x,y", 'q"q', "é"]) | cell


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 4),
    data=st.data(),
    delimiter=st.sampled_from([",", ";", "\t"]),
    terminator=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_round_trip(width: int, data: st.DataObject, delimiter: str, terminator: str) -> None:
    # Given rows written by csv.writer with awkward text
    header = [f"c{i}" for i in range(width)]
    body = data.draw(st.lists(st.lists(cells, min_size=width, max_size=width), max_size=8))
    body = [row for row in body if any(row) or width > 1]  # a lone empty cell is a blank line
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=terminator, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    starts = []
    line = 2
    for row in body:
        starts.append(line)
        before = out.tell()
        writer.writerow(row)
        written = out.getvalue()[before:]
        line += written.count("\n") + written.replace("\r\n", "").count("\r")
    # When it is read back
    rows = read(out.getvalue().encode(), delimiter=delimiter)
    # Then the cells and the starting lines match
    assert [r.values for r in rows] == [dict(zip(header, row, strict=True)) for row in body]
    assert [r.line for r in rows] == starts


def test_line_numbers_match_a_naive_count_on_a_bigger_file() -> None:
    # Given a file with random multi-line cells
    rng = __import__("random").Random(7)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["a", "b"])
    expected = []
    for i in range(2000):
        start = out.getvalue().count("\n") + 1
        expected.append(start)
        writer.writerow([str(i), "\n" * rng.randrange(3) + os.urandom(3).hex()])
    # Then each row's line is where it starts
    assert [r.line for r in read(out.getvalue().encode())] == expected


def test_json_array_invalid_utf8_element() -> None:
    rows = read(b'[{"a": "ok"}, {"a": "\xfe"}, {"a": "fine"}]', "f.json")
    assert rows[1].line == 2 and rows[1].error == "element is not valid UTF-8 (bytes 0xfe)"
    assert good([rows[0], rows[2]]) == [(1, {"a": "ok"}), (3, {"a": "fine"})]
