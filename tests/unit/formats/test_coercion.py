"""Row coercion into Monetate's types, column matching and the unknown-columns policies."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monetate_ingest.formats.coercion import compile_coercer, escape_item
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.schema import SchemaSpec

SCHEMA = SchemaSpec.from_api(
    {
        "name": "purchase_event",
        "type": "event",
        "fields": {
            "customer_id": {"data_type": "STRING", "identifier": True},
            "purchase_id": {"data_type": "STRING", "unique_key": True},
            "note": {"data_type": "STRING"},
            "price": {"data_type": "NUMBER"},
            "member": {"data_type": "BOOLEAN"},
            "at": {"data_type": "DATETIME", "event_time": True},
            "tags": {"data_type": "MULTI_STRING"},
            "sku": {"data_type": "STRING", "required": True},
        },
    }
)
KEYS = {"customer_id": "c1", "purchase_id": "p1", "sku": "s1"}


def one(field: str, value: Any, *, csv: bool = True, naive_tz: str = "UTC") -> Any:
    """Coerce a single value in a row that has the required fields; absent → KeyError-free None."""
    columns = [*KEYS, field] if csv else None
    coercer = compile_coercer(SCHEMA, columns, naive_tz=naive_tz)
    return coercer.coerce({**KEYS, field: value}).get(field)


def fails(field: str, value: Any, *, csv: bool = True) -> RowError:
    with pytest.raises(RowError) as info:
        one(field, value, csv=csv)
    assert info.value.field == field
    assert repr(field) in info.value.reason
    return info.value


# --- absent values ------------------------------------------------------------------------------


@pytest.mark.parametrize("csv", [True, False])
@pytest.mark.parametrize("value", ["", "   ", "\t", None])
@pytest.mark.parametrize("field", ["note", "price", "member", "at", "tags"])
def test_empty_whitespace_and_null_mean_absent(field: str, value: Any, csv: bool) -> None:
    # Given an empty cell, whitespace or null in an optional field
    # Then the field is omitted from the row
    columns = [*KEYS, field] if csv else None
    row = compile_coercer(SCHEMA, columns).coerce({**KEYS, field: value})
    assert row == KEYS


# --- STRING -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("  hello ", "hello"), ("a b", "a b"), (12, "12"), (1.5, "1.5"), (True, "true"), (False, "false")],
)
def test_string(value: Any, expected: str) -> None:
    assert one("note", value, csv=isinstance(value, str)) == expected


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2]])
def test_string_refuses_objects_and_arrays(value: Any) -> None:
    assert "expected text" in fails("note", value, csv=False).reason


# --- NUMBER -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", 1),
        ("-2.5", -2.5),
        ("1e3", 1000.0),
        ("+4", 4),
        (" 7 ", 7),
        (".5", 0.5),
        ("007", 7),
        (3, 3),
        (2.25, 2.25),
    ],
)
def test_number(value: Any, expected: Any) -> None:
    got = one("price", value, csv=isinstance(value, str))
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "value", ["1,000", "NaN", "inf", "-Infinity", "1_000", "abc", "1e999", "\u0661", "0x1f"]
)
def test_number_refuses_text(value: str) -> None:
    error = fails("price", value)
    assert "number" in error.reason
    if value == "1,000":
        assert "thousands separators" in error.reason


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, {"a": 1}, [1]])
def test_number_refuses_json_values(value: Any) -> None:
    fails("price", value, csv=False)


# --- BOOLEAN ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["true", "TRUE", "1", "yes", "Y", "t", " True "])
def test_boolean_true(text: str) -> None:
    assert one("member", text) is True


@pytest.mark.parametrize("text", ["false", "False", "0", "no", "N", "f"])
def test_boolean_false(text: str) -> None:
    assert one("member", text) is False


@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), (1, True), (0, False), (1.0, True)]
)
def test_boolean_json(value: Any, expected: bool) -> None:
    assert one("member", value, csv=False) is expected


@pytest.mark.parametrize("value", ["maybe", "2", 2, "yes please", [True]])
def test_boolean_refused(value: Any) -> None:
    assert "boolean" in fails("member", value, csv=isinstance(value, str)).reason


# --- DATETIME -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01", "2024-05-01T00:00:00Z"),
        ("2024-05-01 13:45", "2024-05-01T13:45:00Z"),
        ("2024-05-01T13:45:00Z", "2024-05-01T13:45:00Z"),
        ("2024-05-01t13:45:00z", "2024-05-01T13:45:00Z"),
        ("2024-05-01T13:45:00+02:00", "2024-05-01T11:45:00Z"),
        ("2024-05-01T13:45:00+0200", "2024-05-01T11:45:00Z"),
        ("2024-05-01T13:45:00-05:30", "2024-05-01T19:15:00Z"),
        ("2024-05-01T13:45:00.5Z", "2024-05-01T13:45:00.500000Z"),
        ("2024-05-01T13:45:00.123456789Z", "2024-05-01T13:45:00.123456Z"),
        ("2024-05-01T13:45:00.000Z", "2024-05-01T13:45:00Z"),
        ("2024-05-01T13:45:00.000000Z", "2024-05-01T13:45:00Z"),
        ("2024/05/01 13:45:00", "2024-05-01T13:45:00Z"),
        ("2024-12-31T23:30:00-01:00", "2025-01-01T00:30:00Z"),
    ],
)
def test_datetime_to_utc(text: str, expected: str) -> None:
    assert one("at", text) == expected


def test_naive_datetime_in_configured_zone() -> None:
    # Given naive values read as New York time (EDT in May, EST in January)
    assert one("at", "2024-05-01 13:45", naive_tz="America/New_York") == "2024-05-01T17:45:00Z"
    assert one("at", "2024-01-15", naive_tz="America/New_York") == "2024-01-15T05:00:00Z"
    # And explicit offsets are not affected
    assert one("at", "2024-05-01T13:45:00Z", naive_tz="America/New_York") == "2024-05-01T13:45:00Z"


@pytest.mark.parametrize("value", ["1714567890", "20240501", "1714567890.5"])
def test_datetime_refuses_bare_numbers(value: str) -> None:
    error = fails("at", value)
    assert "bare number" in error.reason and "ISO-8601" in error.reason


@pytest.mark.parametrize("value", [1714567890, 1.5])
def test_datetime_refuses_json_numbers(value: Any) -> None:
    assert "bare number" in fails("at", value, csv=False).reason


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-02-30T10:00:00Z", "01/05/2024"])
def test_datetime_refuses_non_dates(value: str) -> None:
    assert "date" in fails("at", value).reason


# --- MULTI_STRING -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b ,c", "a,b,c"),
        ("a,,b,", "a,b"),
        ("solo", "solo"),
        (r"a\,b, c", r"a\,b,c"),
        (["x", " y ", "", None, 3, True], "x,y,3,true"),
        (["a,b", "c\\d"], r"a\,b,c\\d"),
        (7, "7"),
    ],
)
def test_multi_string(value: Any, expected: str) -> None:
    assert one("tags", value, csv=isinstance(value, str)) == expected


@pytest.mark.parametrize("value", [",,", " , ", [], ["", None]])
def test_multi_string_with_nothing_left_is_absent(value: Any) -> None:
    assert one("tags", value, csv=isinstance(value, str)) is None


@pytest.mark.parametrize("value", [[["nested"]], [{"a": 1}], {"a": 1}])
def test_multi_string_refuses_nested(value: Any) -> None:
    fails("tags", value, csv=False)


def test_escape_item() -> None:
    assert escape_item("a,b\\c") == "a\\,b\\\\c"


# --- required fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("customer_id", "identifier field 'customer_id' is missing"),
        ("purchase_id", "unique key field 'purchase_id' is missing"),
        ("sku", "required field 'sku' is missing"),
    ],
)
@pytest.mark.parametrize("blank", ["", "  ", None])
def test_identifier_unique_key_and_required_must_be_present(field: str, message: str, blank: Any) -> None:
    coercer = compile_coercer(SCHEMA, list(KEYS))
    with pytest.raises(RowError) as info:
        coercer.coerce({**KEYS, field: blank})
    assert info.value.reason == message and info.value.field == field


def test_missing_fields_lists_required_fields_without_a_column() -> None:
    coercer = compile_coercer(SCHEMA, ["customer_id", "note"])
    assert coercer.missing_fields == ["purchase_id", "sku"]


# --- columns ------------------------------------------------------------------------------------


def test_columns_match_exactly_then_ignoring_case_and_spaces() -> None:
    # Given a header whose names differ from the fields in case and surrounding spaces
    columns = [" Customer_ID ", "PURCHASE_ID", "sku", "Price"]
    coercer = compile_coercer(SCHEMA, columns)
    # Then each maps to its field and values are typed
    assert coercer.mapping == {
        " Customer_ID ": "customer_id",
        "PURCHASE_ID": "purchase_id",
        "sku": "sku",
        "Price": "price",
    }
    assert coercer.unknown_columns == []
    row = coercer.coerce({" Customer_ID ": "c", "PURCHASE_ID": "p", "sku": "s", "Price": "2"})
    assert row == {"customer_id": "c", "purchase_id": "p", "sku": "s", "price": 2}


def test_exact_match_wins_and_a_second_column_for_a_field_is_unknown() -> None:
    coercer = compile_coercer(SCHEMA, ["NOTE", "note", *KEYS])
    assert coercer.mapping["note"] == "note"
    assert coercer.unknown_columns == ["NOTE"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("reject", {**KEYS}),
        ("ignore", {**KEYS}),
        ("add", {**KEYS, "colour": "red"}),
    ],
)
def test_unknown_columns_per_policy(policy: Any, expected: dict[str, Any]) -> None:
    # Given a column the schema lacks
    coercer = compile_coercer(SCHEMA, [*KEYS, "colour "], unknown=policy)
    # Then it is listed, and only "add" passes it on (as STRING, under the trimmed name)
    assert coercer.unknown_columns == ["colour "]
    assert coercer.coerce({**KEYS, "colour ": " red "}) == expected


def test_json_rows_resolve_keys_per_row() -> None:
    # Given JSON rows with differently cased keys
    coercer = compile_coercer(SCHEMA, None, unknown="ignore")
    assert coercer.coerce({"CUSTOMER_ID": "c", "purchase_id": "p", "SKU": "s", "price": 1.5}) == {
        "customer_id": "c",
        "purchase_id": "p",
        "sku": "s",
        "price": 1.5,
    }
    # And unknown keys are ignored and listed
    assert coercer.coerce({**KEYS, "extra": 1}) == KEYS
    assert coercer.unknown_columns == ["extra"]


def test_json_rows_unknown_key_under_reject_is_a_row_error() -> None:
    coercer = compile_coercer(SCHEMA, None, unknown="reject")
    with pytest.raises(RowError) as info:
        coercer.coerce({**KEYS, "extra": 1})
    assert info.value.field == "extra" and "not in schema 'purchase_event'" in info.value.reason


def test_json_rows_unknown_key_under_add() -> None:
    coercer = compile_coercer(SCHEMA, None, unknown="add")
    assert coercer.coerce({**KEYS, "extra": 5}) == {**KEYS, "extra": "5"}
    assert coercer.unknown_columns == ["extra"]


def test_compiled_csv_path_falls_back_for_odd_input() -> None:
    # Given a CSV coercer handed a dict with a missing key and a non-string value
    coercer = compile_coercer(SCHEMA, [*KEYS, "price", "note"])
    # Then it still coerces like the generic path
    assert coercer.coerce({**KEYS, "price": 3}) == {**KEYS, "price": 3}


def test_coerce_does_not_modify_the_source_row() -> None:
    raw = {**KEYS, "price": "2"}
    compile_coercer(SCHEMA, list(raw)).coerce(raw)
    assert raw == {**KEYS, "price": "2"}


def test_output_is_what_the_sandbox_accepts() -> None:
    # Given a full row of awkward input
    coercer = compile_coercer(SCHEMA, None)
    row = coercer.coerce(
        {
            **KEYS,
            "note": " x ",
            "price": "1e2",
            "member": "y",
            "at": "2024-05-01 10:00+01:00",
            "tags": ["a", "b"],
        }
    )
    # Then every value has Monetate's wire type
    for name, value in row.items():
        data_type = SCHEMA.fields[name].data_type
        if data_type in ("STRING", "MULTI_STRING", "DATETIME"):
            assert isinstance(value, str) and value and value == value.strip()
        elif data_type == "NUMBER":
            assert isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        elif data_type == "BOOLEAN":
            assert isinstance(value, bool)
    assert row["at"] == "2024-05-01T09:00:00Z"


# --- properties ---------------------------------------------------------------------------------

text = st.text(max_size=20)
json_scalar = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | st.floats(allow_nan=False) | text
values_for = {
    "note": text | json_scalar,
    "price": st.integers(-(10**15), 10**15).map(str)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text,
    "member": st.sampled_from(["true", "no", "Y", "0", True, False, 1, 0]) | text,
    "at": st.datetimes().map(lambda d: d.isoformat(sep=" ")) | st.dates().map(str) | text,
    "tags": text | st.lists(text | st.integers(), max_size=4),
}


@settings(max_examples=200, deadline=None)
@given(field=st.sampled_from(sorted(values_for)), data=st.data())
def test_coercion_accepts_what_it_emits(field: str, data: st.DataObject) -> None:
    # Given any value for a field, coerced once
    value = data.draw(values_for[field])
    coercer = compile_coercer(SCHEMA, None)
    try:
        once = coercer.coerce({**KEYS, field: value})
    except RowError:
        return
    # When the output is coerced again (as JSON and as CSV text)
    twice = coercer.coerce(once)
    as_text = compile_coercer(SCHEMA, list(once)).coerce(
        {k: str(v) if not isinstance(v, bool) else str(v).lower() for k, v in once.items()}
    )
    # Then nothing changes
    assert twice == once
    assert as_text == once


def test_add_policy_never_shadows_a_schema_field() -> None:
    # Given a second column for an existing field under "add"
    coercer = compile_coercer(SCHEMA, [*KEYS, "note", " Note"], unknown="add")
    # Then it is listed as unknown but not passed on
    assert coercer.unknown_columns == [" Note"]
    assert coercer.coerce({**KEYS, "note": "a", " Note": "b"}) == {**KEYS, "note": "a"}


# --- the CSV cells path ------------------------------------------------------------------------

COLUMNS = ["customer_id", "purchase_id", "note", "price", "member", "at", "tags", "sku"]
CELL = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "1",
            "-2.5",
            "1e3",
            "abc",
            "yes",
            "NO",
            "t",
            "2024-05-01",
            "2024-05-01 10:00",
            "2024-05-01T10:00:00+02:00",
            "a,b",
            " x ",
            "1,000",
            "nan",
        ]
    ),
    st.text(max_size=12),
)


def _outcome(fn: Any, arg: Any) -> Any:
    try:
        return ("ok", fn(arg))
    except RowError as exc:
        return ("error", exc.field, exc.reason)


@settings(max_examples=300, deadline=None)
@given(st.lists(CELL, min_size=len(COLUMNS), max_size=len(COLUMNS)))
def test_the_cells_path_agrees_with_the_dict_path(cells: list[str]) -> None:
    # Given a CSV row as cells and as the {column: cell} dict the reader would build
    coercer = compile_coercer(SCHEMA, COLUMNS)
    assert coercer.coerce_cells is not None
    # When both paths coerce it  Then they give the same row, or the same error for the same field
    assert _outcome(coercer.coerce_cells, cells) == _outcome(
        coercer.coerce, dict(zip(COLUMNS, cells, strict=True))
    )
