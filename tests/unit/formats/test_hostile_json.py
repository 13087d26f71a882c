"""JSON values that cannot be decoded reject their row, not the file.

Nesting beyond the parser's limit, a whole number of thousands of digits, ``NaN`` / ``Infinity`` /
``-Infinity`` and invalid UTF-8 in one line (JSON lines) or one element (JSON array) become that
row's error with its line or index; the rows after it are read. In a JSON array an element whose
end cannot be found fails the file there, naming it, after the elements before it.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers import SourceRow, open_rows
from monetate_ingest.formats.readers import json_rows as json_rows_mod
from monetate_ingest.formats.readers.json_values import ValueEnd

DEEP = "[" * 10_000 + "]" * 10_000
HUGE = "1" * 5_000
#: (value text, what the reason says) for every value the decoder cannot give back.
BAD_VALUES = {
    "deep": (DEEP, "cannot be read: it nests arrays or objects too deeply"),
    "5000-digits": (HUGE, "cannot be read: it holds a whole number of more than 4300 digits"),
    "NaN": ("NaN", "is not valid JSON: NaN is not a JSON number (write null or leave the field out)"),
    "Infinity": ("Infinity", "is not valid JSON: Infinity is not a JSON number"),
    "-Infinity": ("-Infinity", "is not valid JSON: -Infinity is not a JSON number"),
    "nested-NaN": ('{"x": [1, NaN]}', "is not valid JSON: NaN is not a JSON number"),
}


def rows_of(data: bytes, key: str) -> list[SourceRow]:
    return list(open_rows(io.BytesIO(data), key))


def lines_and_values(rows: list[SourceRow]) -> list[tuple[int, Any]]:
    return [(r.line, r.values) for r in rows if r.error is None]


# --- JSON lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_jsonl_line_with_an_undecodable_value_is_rejected_and_reading_goes_on(case: str) -> None:
    # Given a JSON lines file whose line 2 holds a value the decoder cannot give back
    value, says = BAD_VALUES[case]
    bad = '{"customer_id": "c2", "points": ' + value + "}"
    data = f'{{"customer_id": "c1"}}\n{bad}\n\n{{"customer_id": "c4"}}\n'.encode()
    # When it is read
    rows = rows_of(data, "f.jsonl")
    # Then line 2 is that row's error, with the line as raw, and lines 1 and 4 are read
    assert [r.line for r in rows] == [1, 2, 4]
    assert rows[1].values is None and rows[1].raw == bad
    assert rows[1].error is not None and rows[1].error.startswith(f"line {says}")
    assert lines_and_values(rows) == [(1, {"customer_id": "c1"}), (4, {"customer_id": "c4"})]


def test_jsonl_constants_inside_strings_are_text() -> None:
    rows = rows_of(b'{"a": "NaN", "b": "-Infinity"}\n', "f.jsonl")
    assert lines_and_values(rows) == [(1, {"a": "NaN", "b": "-Infinity"})]


def test_jsonl_invalid_utf8_inside_one_line_rejects_that_line() -> None:
    # Given a Latin-1 byte inside a string on line 2
    rows = rows_of(b'{"a": "ok"}\n{"a": "caf\xe9"}\n{"a": "fine"}\n', "f.jsonl")
    # Then line 2 is rejected naming the byte, its raw readable, and the others are read
    assert rows[1].line == 2 and rows[1].error == "line is not valid UTF-8 (bytes 0xe9)"
    assert rows[1].raw == '{"a": "caf\ufffd"}'
    assert lines_and_values(rows) == [(1, {"a": "ok"}), (3, {"a": "fine"})]


# --- JSON arrays --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_json_array_element_with_an_undecodable_value_is_rejected_and_reading_goes_on(case: str) -> None:
    # Given an array whose element 2 holds a value the decoder cannot give back
    value, says = BAD_VALUES[case]
    bad = '{"customer_id": "c2", "note": "a ] and a , in text", "points": ' + value + "}"
    data = f'[{{"customer_id": "c1"}},\n {bad} ,\n {{"customer_id": "c3"}}]'.encode()
    # When it is read
    rows = rows_of(data, "f.json")
    # Then element 2 is that row's error with its text, and elements 1 and 3 are read
    assert [r.line for r in rows] == [1, 2, 3]
    assert rows[1].values is None and rows[1].raw == bad
    assert rows[1].error is not None and rows[1].error.startswith(f"element {says}")
    assert lines_and_values(rows) == [(1, {"customer_id": "c1"}), (3, {"customer_id": "c3"})]


def test_json_array_bad_elements_are_skipped_across_chunk_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given tiny text chunks, so that the deep and the huge elements straddle many chunk edges
    monkeypatch.setattr(json_rows_mod, "TEXT_CHUNK", 7)
    elements = [f'{{"i": {i}, "s": "x\\"]{i}"}}' for i in range(6)]
    elements[1] = '{"deep": ' + DEEP + "}"
    elements[3] = '{"n": ' + HUGE + ', "s": "]]]"}'
    elements[4] = "NaN"
    # When the array is read
    rows = rows_of(("[" + ",".join(elements) + "]").encode(), "f.json")
    # Then the three bad elements are rejected in place and the others come back whole
    assert [(r.line, r.error is None) for r in rows] == [(i, i not in (2, 4, 5)) for i in range(1, 7)]
    assert [r.values for r in rows if r.error is None] == [json.loads(elements[i]) for i in (0, 2, 5)]


def test_json_array_element_whose_end_cannot_be_found_fails_the_file_naming_it() -> None:
    # Given element 3 with NaN and brackets that do not match
    data = b'[{"i": 1}, {"i": 2}, {"i": NaN]}, {"i": 4}]'
    got: list[SourceRow] = []
    # When it is read
    with pytest.raises(FileFormatError) as info:
        got.extend(open_rows(io.BytesIO(data), "f.json"))
    # Then the elements before it came out and the file fails at element 3, saying why
    assert lines_and_values(got) == [(1, {"i": 1}), (2, {"i": 2})]
    assert info.value.line == 3
    assert str(info.value).startswith("JSON array element 3 is not valid JSON: NaN is not a JSON number")
    assert "where it ends cannot be told" in str(info.value)


def test_json_array_ending_inside_a_bad_element_fails_the_file_naming_it() -> None:
    with pytest.raises(FileFormatError, match=r"element 2 .*NaN.* and the file ends inside it") as info:
        rows_of(b'[{"i": 1}, {"i": NaN, "s": "never closed', "f.json")
    assert info.value.line == 2


def test_json_array_broken_json_fails_the_file_after_the_elements_before_it() -> None:
    got: list[SourceRow] = []
    with pytest.raises(FileFormatError, match="element 2 is not valid JSON") as info:
        got.extend(open_rows(io.BytesIO(b'[{"i": 1}, {i: 2}, {"i": 3}]'), "f.json"))
    assert lines_and_values(got) == [(1, {"i": 1})] and info.value.line == 2
    assert "the elements before it were read" in str(info.value)


def test_json_array_null_element_is_a_row_error_not_dropped() -> None:
    rows = rows_of(b'[{"i": 1}, null, {"i": 3}]', "f.json")
    assert [(r.line, r.error) for r in rows] == [
        (1, None),
        (2, "element is JSON null, expected an object"),
        (3, None),
    ]


def test_json_array_invalid_utf8_element_rejects_that_element() -> None:
    rows = rows_of(b'[{"a": "ok"}, {"a": "\xff\xfe"}, {"a": "fine"}]', "f.json")
    assert rows[1].line == 2 and rows[1].error == "element is not valid UTF-8 (bytes 0xff 0xfe)"
    assert lines_and_values(rows) == [(1, {"a": "ok"}), (3, {"a": "fine"})]


# --- where an element ends ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "end"),
    [
        ("NaN, 2]", 3),
        ('{"a": "],}\\"", "b": [1, {"c": 2}]} ]', 35),
        ("[[[]]]]", 6),
        ('"x\\\\", 1', 5),
    ],
)
def test_value_end_finds_the_separator_after_an_element(text: str, end: int) -> None:
    assert ValueEnd().find(text, 0) == end


def test_value_end_asks_for_more_text_and_resumes() -> None:
    # Given an element cut inside a string, then inside the brackets
    finder = ValueEnd()
    # Then it asks for more each time, and finds the end once the text is complete
    assert finder.find('{"a": "cut', 0) is None
    assert finder.find('{"a": "cut here"', 0) is None
    assert finder.find('{"a": "cut here"}, {', 0) == 17
