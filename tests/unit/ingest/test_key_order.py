"""Per-key order: record keys read from encoded rows, the keys in flight, the keys parked."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from monetate_ingest.formats.encoding import encode_row
from monetate_ingest.ingest.key_order import KeyOrder
from monetate_ingest.ingest.record_keys import KeyReader, key_field
from monetate_ingest.monetate.schema import SchemaSpec


def _schema(unique: bool) -> SchemaSpec:
    fields: dict[str, Any] = {"customer_id": {"data_type": "STRING", "identifier": True}}
    if unique:
        fields["email"] = {"data_type": "STRING", "unique_key": True}
    return SchemaSpec.from_api({"name": "customers", "fields": fields})


def test_the_key_field_is_the_unique_key_else_the_identifier() -> None:
    assert key_field(_schema(unique=True)) == "email"
    assert key_field(_schema(unique=False)) == "customer_id"


@given(
    st.lists(
        st.fixed_dictionaries(
            {"customer_id": st.text(min_size=1)},
            optional={"note": st.text(), "n": st.integers(), "email": st.text(min_size=1)},
        ),
        max_size=20,
    )
)
def test_keys_read_from_encoded_rows_equal_the_decoded_values(rows: list[dict[str, Any]]) -> None:
    # Given rows encoded as they are posted (values with quotes, backslashes, unicode, the name
    # of the key field inside another value)
    encoded = [encode_row(r).encode() for r in rows]
    # When the keys are read from the bytes
    keys = KeyReader("customer_id").keys(encoded)
    # Then equal values give equal keys and different values different keys
    want = [json.dumps(r["customer_id"], ensure_ascii=False)[1:-1].encode() for r in rows]
    assert keys == want


def test_a_value_that_imitates_the_field_name_is_not_taken_for_it() -> None:
    row = {"note": '"customer_id":"fake"', "customer_id": "real"}
    assert KeyReader("customer_id").key(encode_row(row).encode()) == b"real"
    assert KeyReader("customer_id").key(encode_row({"note": "x"}).encode()) is None


def test_a_batch_waits_for_the_batches_in_flight_that_share_a_key() -> None:
    order = KeyOrder()
    order.hold(1, [b"a", b"b"])
    order.hold(2, [b"c"])
    # Given unit 3 holds a key of unit 1 and unit 4 shares nothing
    assert order.blockers([b"x", b"b", None]) == {1}
    assert order.blockers([b"y"]) == set()
    # When unit 1 ends, nobody waits for it any more; only keys in flight are held
    order.release(1)
    assert order.blockers([b"b"]) == set() and len(order) == 1


def test_the_keys_of_a_parked_batch_park_later_rows_of_the_same_records() -> None:
    order = KeyOrder()
    order.hold(1, [b"a", b"b"])
    order.release(1, parked=True)
    assert order.must_park([b"z", b"b", None, b"a"]) == [1, 3]
    assert order.blockers([b"a"]) == set()  # parked is not in flight
