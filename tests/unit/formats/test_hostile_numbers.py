"""Numbers no double holds are refused before posting, in every format and on every CSV path.

A NUMBER must be finite within ±1.8e308, and a whole number within ±(2**53 - 1), the range in
which a double holds every integer exactly; decimal fractions are rounded like any JSON number.
No field of any type is stored as ``"inf"`` or ``"nan"``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from monetate_ingest.formats.coercion import compile_coercer
from monetate_ingest.formats.coercion.converters import MAX_SAFE_INTEGER
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.schema import SchemaSpec

from local.samples import customers_schema

SCHEMA = SchemaSpec.from_api(customers_schema("c"))
COLUMNS = ["customer_id", "email", "points", "vip", "signup", "tags"]
GOOD = ["c1", "a@example.com", "12", "true", "2024-05-01T10:00:00Z", "gold"]


def csv_outcomes(cells: list[str]) -> list[Any]:
    """The row through each CSV path: coerce_cells, encode_cells, encode_block (None: not whole)."""
    coercer = compile_coercer(SCHEMA, COLUMNS)
    assert coercer.coerce_cells and coercer.encode_cells and coercer.encode_block
    out: list[Any] = []
    for path in (coercer.coerce_cells, coercer.encode_cells):
        try:
            out.append(path(cells))
        except RowError as exc:
            out.append((exc.field, exc.reason))
    out.append(coercer.encode_block([cells]))
    return out


def json_error(**values: Any) -> RowError:
    with pytest.raises(RowError) as info:
        compile_coercer(SCHEMA, None).coerce({"customer_id": "c1", **values})
    return info.value


# --- whole numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1" * 4000,
        "-" + "9" * 5000,
        str(MAX_SAFE_INTEGER + 1),
        "-" + str(MAX_SAFE_INTEGER + 1),
        "12345678901234567891",
    ],
)
def test_a_whole_number_beyond_2_53_in_a_csv_number_cell_is_out_of_range(text: str) -> None:
    # Given a NUMBER cell holding a whole number no double holds exactly (up to 5,000 digits)
    cells = [*GOOD[:2], text, *GOOD[3:]]
    # When the row is coerced or encoded on any CSV path
    coerced, encoded, block = csv_outcomes(cells)
    # Then it is refused naming the field and the range, and the block path hands it to the row path
    assert coerced == encoded
    field, reason = coerced
    assert field == "points"
    assert reason.startswith("field 'points' is out of range: ")
    assert f"±{MAX_SAFE_INTEGER:,}" in reason and "STRING field" in reason
    assert len(reason) < 300  # the 4,000 digits are not repeated back
    assert block is None


@pytest.mark.parametrize("text", [str(MAX_SAFE_INTEGER), "-" + str(MAX_SAFE_INTEGER), "0" * 30 + "7", "+42"])
def test_whole_numbers_within_2_53_are_posted_exactly(text: str) -> None:
    # Given the largest safe whole numbers (and leading zeros, a sign)
    coerced, encoded, block = csv_outcomes([*GOOD[:2], text, *GOOD[3:]])
    # Then they are posted as JSON integers, the same on every path
    assert coerced["points"] == int(text)
    assert encoded == block[0]  # type: ignore[index]
    assert f'"points":{int(text)},'.encode() in encoded


@pytest.mark.parametrize(
    "value", [MAX_SAFE_INTEGER + 1, -(10**4000), 2**63], ids=["2**53", "-10**4000", "2**63"]
)
def test_a_whole_json_number_beyond_2_53_is_out_of_range(value: int) -> None:
    # Given a JSON row whose NUMBER field is an integer no double holds exactly
    error = json_error(points=value)
    # Then it is refused naming the field
    assert error.field == "points" and "is out of range" in error.reason
    assert len(error.reason) < 300


def test_long_decimal_fractions_are_rounded_like_any_json_number() -> None:
    # Given a 4,000-digit decimal fraction and a tiny one
    coercer = compile_coercer(SCHEMA, COLUMNS)
    row = coercer.coerce_cells([*GOOD[:2], "1." + "3" * 4000, *GOOD[3:]])
    tiny = coercer.coerce_cells([*GOOD[:2], "1e-400", *GOOD[3:]])
    # Then they are the nearest doubles
    assert row["points"] == pytest.approx(4 / 3) and tiny["points"] == 0.0


# --- infinity and NaN ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("NaN", "only finite numbers"),
        ("nan", "only finite numbers"),
        ("inf", "only finite numbers"),
        ("-Infinity", "only finite numbers"),
        ("+inf", "only finite numbers"),
        ("1e400", "is out of range"),
        ("-1" + "0" * 400 + ".5", "is out of range"),
    ],
)
def test_nan_and_infinity_in_a_csv_number_cell_are_refused(text: str, says: str) -> None:
    # Given a NUMBER cell that reads as NaN or infinity
    coerced, encoded, block = csv_outcomes([*GOOD[:2], text, *GOOD[3:]])
    # Then every path refuses it naming the field
    assert coerced == encoded and coerced[0] == "points" and says in coerced[1]
    assert block is None


@pytest.mark.parametrize("field", ["email", "tags", "points"])
def test_a_json_number_that_reads_as_infinity_is_refused_in_any_field(field: str) -> None:
    # Given a JSON 1e400 (Python reads it as inf) in a STRING, MULTI_STRING or NUMBER field
    error = json_error(**{field: math.inf})
    # Then it is refused, never stored as "inf"
    assert error.field == field
    assert "is out of range: it reads as inf" in error.reason


def test_infinity_inside_a_multi_string_array_is_refused() -> None:
    error = json_error(tags=["a", -math.inf])
    assert error.field == "tags" and "-inf" in error.reason


def test_nan_and_inf_are_plain_text_in_a_csv_string_cell() -> None:
    # Given the words in a CSV STRING cell (a name can be "Nan")
    coerced, encoded, block = csv_outcomes(["NaN", "inf", *GOOD[2:]])
    # Then they are text like any other
    assert coerced["customer_id"] == "NaN" and coerced["email"] == "inf"
    assert encoded == block[0]  # type: ignore[index]
