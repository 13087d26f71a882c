"""Schema endpoints and rules of the sandbox: names, fields, identifier, unique key, types, PATCH."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.sandbox import MonetateSandbox

USER = "api-123-test"
ID = {"data_type": "STRING", "identifier": True}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Client:
    """A bare requests client holding one token."""

    def __init__(self, sb: MonetateSandbox, key: rsa.RSAPrivateKey) -> None:
        self.sb = sb
        self.session = requests.Session()
        signed = jwt.encode({"username": USER, "iat": time.time()}, key, algorithm="RS256")
        answer = self.session.get(sb.auth_url, headers={"Authorization": f"JWT {signed}"}, timeout=5)
        self.session.headers["Authorization"] = f"Token {answer.json()['data']['token']}"

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.session.request(method, f"{self.sb.data_url}{path}", json=body, timeout=5)


@pytest.fixture
def sandbox(key: rsa.RSAPrivateKey) -> Iterator[MonetateSandbox]:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with MonetateSandbox("acme") as sb:
        sb.register_key(USER, pem)
        yield sb


@pytest.fixture
def client(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey) -> Client:
    return Client(sandbox, key)


def schema(name: str = "customers", **overrides: Any) -> dict[str, Any]:
    fields = {"customer_id": dict(ID), "email": {"data_type": "STRING"}}
    body: dict[str, Any] = {"name": name, "fields": fields}
    body.update(overrides)
    return body


def many_fields(count: int) -> dict[str, Any]:
    return {"customer_id": dict(ID), **{f"f{i}": {"data_type": "NUMBER"} for i in range(count - 1)}}


BAD_SCHEMAS = {
    "name-starts-with-digit": schema("1customers"),
    "name-too-long": schema("c" * 65),
    "name-missing": {"fields": {"customer_id": dict(ID)}},
    "fields-missing": {"name": "customers"},
    "fields-empty": schema(fields={}),
    "41-fields": schema(fields=many_fields(41)),
    "bad-data-type": schema(fields={"customer_id": dict(ID), "x": {"data_type": "TEXT"}}),
    "no-identifier": schema(fields={"email": {"data_type": "STRING"}}),
    "two-identifiers": schema(fields={"a": dict(ID), "b": dict(ID)}),
    "number-identifier": schema(fields={"a": {"data_type": "NUMBER", "identifier": True}}),
    "two-unique-keys": schema(
        fields={
            "a": dict(ID),
            "b": {"data_type": "STRING", "unique_key": True},
            "c": {"data_type": "STRING", "unique_key": True},
        }
    ),
    "number-unique-key": schema(fields={"a": dict(ID), "b": {"data_type": "NUMBER", "unique_key": True}}),
    "string-event-time": schema(fields={"a": dict(ID), "t": {"data_type": "STRING", "event_time": True}}),
    "unknown-type": schema(type="spreadsheet"),
    "event-without-event-time": schema(type="event"),
    "unknown-field-attribute": schema(fields={"a": dict(ID), "b": {"data_type": "STRING", "uniq": True}}),
    "unknown-key": schema(colour="red"),
    "read-only-id": schema(id=7),
    "read-only-created-date": schema(created_date="2024-05-01T10:00:00Z"),
}

GOOD_SCHEMAS = {
    "minimal": schema(fields={"customer_id": dict(ID)}),
    # the reference's text allows hyphens, its pattern does not: we follow the text
    "name-with-hyphen": schema("my-customers"),
    "64-char-name": schema("c" * 64),
    "40-fields": schema(fields=many_fields(40)),
    "unique-key": schema(fields={"a": dict(ID), "k": {"data_type": "STRING", "unique_key": True}}),
    "identifier-is-unique-key": schema(fields={"a": {**ID, "unique_key": True}}),
    "event": schema(
        type="event",
        fields={
            "a": dict(ID),
            "t": {"data_type": "DATETIME", "event_time": True},
            "p": {"data_type": "NUMBER"},
        },
    ),
    "all-data-types": schema(
        fields={
            "a": dict(ID),
            "m": {"data_type": "MULTI_STRING"},
            "b": {"data_type": "BOOLEAN"},
            "d": {"data_type": "DATETIME"},
            "n": {"data_type": "NUMBER"},
            "g": {"data_type": "GOOGLE_PRODUCT_CATEGORY", "required": False},
        }
    ),
}


@pytest.mark.sends_invalid_requests
@pytest.mark.parametrize("body", BAD_SCHEMAS.values(), ids=BAD_SCHEMAS.keys())
def test_a_schema_breaking_a_rule_is_400_with_a_message(client: Client, body: dict[str, Any]) -> None:
    # Given a schema body that breaks one rule
    # When it is posted
    answer = client.call("POST", "/schema/", body)
    # Then 400 in the envelope with a message, and nothing is stored
    assert answer.status_code == 400
    meta = answer.json()["meta"]
    assert meta["code"] == 400
    assert meta["errors"] and all(e["message"] for e in meta["errors"])
    assert client.call("GET", "/schema/").json()["data"] == []


@pytest.mark.parametrize("body", GOOD_SCHEMAS.values(), ids=GOOD_SCHEMAS.keys())
def test_a_valid_schema_is_created_201(client: Client, body: dict[str, Any]) -> None:
    # Given a valid schema body
    # When it is posted
    answer = client.call("POST", "/schema/", body)
    # Then 201 echoes the stored schema (type defaults to attribute) and it can be read back
    assert answer.status_code == 201, answer.text
    created = answer.json()["data"]
    assert created["name"] == body["name"] and created["fields"] == body["fields"]
    assert created["type"] == body.get("type", "attribute")
    assert client.call("GET", f"/schema/{body['name']}/").json()["data"] == created


def test_schema_names_are_unique(client: Client) -> None:
    # Given an existing schema
    assert client.call("POST", "/schema/", schema()).status_code == 201
    # When the same name is posted again
    answer = client.call("POST", "/schema/", schema())
    # Then 400
    assert answer.status_code == 400
    assert "exists" in answer.json()["meta"]["errors"][0]["message"]


def test_customer_data_privacy_gets_its_default_fields(client: Client) -> None:
    # Given a privacy dataset posted with only its identifier (the reference requires fields)
    body = {"name": "deletions", "type": "customer_data_privacy", "fields": {"customer_id": dict(ID)}}
    answer = client.call("POST", "/schema/", body)
    # Then it also has delete_request_time (DATETIME), as the reference describes the dataset
    assert answer.status_code == 201, answer.text
    fields = answer.json()["data"]["fields"]
    assert fields["customer_id"] == {"data_type": "STRING", "identifier": True}
    assert fields["delete_request_time"] == {"data_type": "DATETIME"}


def test_schema_list_counts_and_a_missing_schema_is_404(client: Client) -> None:
    # Given two schemas
    client.call("POST", "/schema/", schema("a"))
    client.call("POST", "/schema/", schema("b"))
    # When listing / reading an absent one
    listing = client.call("GET", "/schema/").json()
    missing = client.call("GET", "/schema/nope/")
    # Then the list has both with meta.count, and the absent one is 404 in the envelope
    assert [s["name"] for s in listing["data"]] == ["a", "b"]
    assert listing["meta"]["count"] == 2
    assert missing.status_code == 404 and missing.json()["meta"]["code"] == 404


def test_patch_adds_fields(client: Client) -> None:
    # Given a schema
    client.call("POST", "/schema/", schema())
    # When a field is added
    answer = client.call("PATCH", "/schema/customers/", {"fields": {"age": {"data_type": "NUMBER"}}})
    # Then 200 and the schema has it
    assert answer.status_code == 200, answer.text
    assert set(answer.json()["data"]["fields"]) == {"customer_id", "email", "age"}
    assert "age" in client.call("GET", "/schema/customers/").json()["data"]["fields"]


@pytest.mark.parametrize(
    "body",
    [
        {"fields": {"email": {"data_type": "STRING"}}},
        {"fields": {"age": {"data_type": "NUMBER"}}, "named_identifier": "email"},
        {},
        {"fields": {"other_id": dict(ID)}},
        {"fields": many_fields(40) | {"customer_id_2": {"data_type": "STRING"}}},
        {"fields": {"age": {"data_type": "INTEGER"}}},
        {"named_identifier": "has space"},
    ],
    ids=["existing-field", "both", "neither", "second-identifier", "over-40", "bad-type", "bad-named-id"],
)
@pytest.mark.sends_invalid_requests
def test_a_patch_breaking_a_rule_is_400(client: Client, body: dict[str, Any]) -> None:
    # Given a schema
    client.call("POST", "/schema/", schema())
    # When an invalid patch is sent
    answer = client.call("PATCH", "/schema/customers/", body)
    # Then 400 and the schema is unchanged
    assert answer.status_code == 400
    assert set(client.call("GET", "/schema/customers/").json()["data"]["fields"]) == {"customer_id", "email"}


def test_patch_sets_named_identifier_and_patching_a_missing_schema_is_404(client: Client) -> None:
    # Given a schema
    client.call("POST", "/schema/", schema())
    # When named_identifier is set, and a missing schema is patched
    answer = client.call("PATCH", "/schema/customers/", {"named_identifier": "email_hash"})
    missing = client.call("PATCH", "/schema/nope/", {"named_identifier": "x"})
    # Then 200 with the name set, and 404
    assert answer.status_code == 200 and answer.json()["data"]["named_identifier"] == "email_hash"
    assert missing.status_code == 404


def test_schema_types_are_listed_and_described(client: Client) -> None:
    # When listing the schema types and reading one
    listing = client.call("GET", "/schematype/").json()
    product = client.call("GET", "/schematype/product/").json()["data"]
    missing = client.call("GET", "/schematype/nope/")
    # Then the reference's enum is there, product has its id field, unknown is 404
    names = {t["name"] for t in listing["data"]}
    assert {"attribute", "event", "product", "customer_data_privacy"} <= names
    assert listing["meta"]["count"] == len(names)
    assert product["fields"]["id"]["identifier"] is True
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/data/v1/other/production/schema/", 404),
        ("GET", "/api/data/v1/acme/staging/schema/", 404),
        ("GET", "/api/data/v1/acme/production/nothing/", 404),
        ("GET", "/api/data/v1/acme/production/schema", 404),
        ("GET", "/elsewhere/", 404),
        ("DELETE", "/api/data/v1/acme/production/schema/", 405),
        ("PUT", "/api/data/v1/acme/production/data/customers/", 405),
        ("POST", "/api/auth/v0/refresh/", 405),
    ],
)
@pytest.mark.sends_invalid_requests
def test_unknown_paths_are_404_and_wrong_methods_405(
    client: Client, method: str, path: str, status: int
) -> None:
    # Given an authenticated client
    # When calling an unknown path or a known one with the wrong method
    answer = client.session.request(method, f"{client.sb.url}{path}", timeout=5)
    # Then 404 / 405 in the envelope
    assert answer.status_code == status
    assert answer.json()["meta"]["code"] == status


def test_add_schema_applies_the_same_rules(sandbox: MonetateSandbox) -> None:
    # Given the control API
    # When a valid and an invalid schema are added
    stored = sandbox.add_schema(schema())
    # Then the valid one is stored and the invalid one raises
    assert stored["name"] == "customers" and sandbox.schema("customers") == stored
    with pytest.raises(ValueError, match="identifier"):
        sandbox.add_schema(schema("other", fields={"email": {"data_type": "STRING"}}))
