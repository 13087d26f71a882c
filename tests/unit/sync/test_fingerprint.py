"""Fingerprints: equal data in other spellings is the same row; the ledger holds no value in clear."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from monetate_ingest.formats.coercion import compile_coercer
from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.sync.fingerprint import LedgerHasher, canonical_encoding, ledger_secret

SCHEMA = SchemaSpec.from_api(
    {
        "name": "customers",
        "type": "customer",
        "fields": {
            "customer_id": {"data_type": "STRING", "identifier": True},
            "email": {"data_type": "STRING", "unique_key": True},
            "spend": {"data_type": "NUMBER"},
            "member": {"data_type": "BOOLEAN"},
            "since": {"data_type": "DATETIME"},
            "tags": {"data_type": "MULTI_STRING"},
        },
    }
)
HASHER = LedgerHasher(b"k" * 32, "acme", "production", "customers")


def csv_row(header: list[str], cells: list[str]) -> dict[str, Any]:
    coercer = compile_coercer(SCHEMA, header)
    return coercer.coerce(dict(zip(header, cells, strict=True)))


def json_row(raw: dict[str, Any]) -> dict[str, Any]:
    return compile_coercer(SCHEMA, None).coerce(raw)


BASE = ["customer_id", "email", "spend", "member", "since", "tags"]


def test_a_changed_value_changes_the_fingerprint() -> None:
    # Given a row, and the same row with one value changed
    a = csv_row(BASE, ["c1", "a@x.io", "1000", "yes", "2024-05-01", "red,blue"])
    b = csv_row(BASE, ["c1", "a@x.io", "1001", "yes", "2024-05-01", "red,blue"])
    # Then their fingerprints differ
    assert HASHER.fingerprint(a) != HASHER.fingerprint(b)


def test_multi_string_item_order_counts() -> None:
    a = csv_row(BASE, ["c1", "a@x.io", "1", "yes", "2024-05-01", "red,blue"])
    b = csv_row(BASE, ["c1", "a@x.io", "1", "yes", "2024-05-01", "blue,red"])
    assert HASHER.fingerprint(a) != HASHER.fingerprint(b)


def test_a_field_that_became_absent_is_a_change() -> None:
    a = csv_row(BASE, ["c1", "a@x.io", "1", "yes", "2024-05-01", "red"])
    b = csv_row(BASE, ["c1", "a@x.io", "1", "yes", "2024-05-01", ""])
    assert HASHER.fingerprint(a) != HASHER.fingerprint(b)


def test_equal_values_in_other_spellings_and_column_order_are_the_same_row() -> None:
    # Given the same data spelled differently: 1e3 vs 1000, TRUE vs yes, a date vs its UTC midnight,
    # columns reordered, and once as a JSON row
    a = csv_row(BASE, ["c1", "a@x.io", "1000", "yes", "2024-05-01", "red,blue"])
    reordered = ["tags", "since", "member", "spend", "email", "customer_id"]
    b = csv_row(reordered, ["red, blue", "2024-05-01T00:00:00.000Z", "TRUE", "1e3", "a@x.io", "c1"])
    c = json_row(
        {"email": "a@x.io", "customer_id": "c1", "spend": 1000.0, "member": True,
         "since": "2024-05-01T02:00:00+02:00", "tags": ["red", "blue"]}
    )  # fmt: skip
    # Then coercion may differ (1000 vs 1000.0) but the fingerprint does not
    assert a["spend"] == 1000 and b["spend"] == 1000.0
    assert HASHER.fingerprint(a) == HASHER.fingerprint(b) == HASHER.fingerprint(c)
    assert HASHER.fingerprint_encoded(canonical_encoding(b)) == HASHER.fingerprint(a)


@pytest.mark.parametrize(("x", "y"), [(0.0, -0.0), (1e3, 1000), (2.5, 2.5)])
def test_numbers_are_canonical(x: float, y: float) -> None:
    assert canonical_encoding({"n": x}) == canonical_encoding({"n": y})


def test_a_fractional_number_is_not_rounded_to_a_whole_one() -> None:
    assert canonical_encoding({"n": 1000.5}) != canonical_encoding({"n": 1000})


def test_the_ledger_id_holds_no_identifier_and_depends_on_every_part_of_the_scope() -> None:
    # Given a record key that is a customer's e-mail address
    key = HASHER.key_id("a@x.io")
    # Then the id does not contain it, and is prefixed by the schema's scope
    assert "a@x.io" not in key and "x.io" not in key
    assert key.startswith(HASHER.scope + ".")
    # And another retailer, environment, schema or key gives another id
    others = [
        LedgerHasher(b"k" * 32, "other", "production", "customers"),
        LedgerHasher(b"k" * 32, "acme", "staging", "customers"),
        LedgerHasher(b"k" * 32, "acme", "production", "visits"),
    ]
    assert len({key, HASHER.key_id("b@x.io"), *(h.key_id("a@x.io") for h in others)}) == 5


def test_without_the_hashing_key_nobody_can_confirm_a_guess() -> None:
    # Given the same key hashed with two hashing keys (two API users' private keys)
    other = LedgerHasher(b"q" * 32, "acme", "production", "customers")
    # Then the ids and fingerprints differ: a plain hash of a guessed e-mail would match
    assert other.key_id("a@x.io") != HASHER.key_id("a@x.io")
    assert other.fingerprint({"email": "a@x.io"}) != HASHER.fingerprint({"email": "a@x.io"})


def test_a_short_hashing_key_is_refused_and_never_shown() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        LedgerHasher(b"short", "acme", "production", "customers")
    assert "kkkk" not in repr(HASHER)


def test_the_hashing_key_is_derived_from_the_private_key_one_way() -> None:
    # Given two RSA keys
    k1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    k2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # Then each gives one stable 32-byte secret, different between keys
    assert ledger_secret(k1) == ledger_secret(k1)
    assert len(ledger_secret(k1)) == 32
    assert ledger_secret(k1) != ledger_secret(k2)
