"""The sandbox answers as the reference does where it used to answer its own way (issue 13)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.sandbox import FaultConfig, MonetateSandbox, exchanges

USER = "api-123-wire"
CUSTOMERS = {
    "name": "customers",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True},
        "tier": {"data_type": "STRING"},
        "points": {"data_type": "NUMBER"},
    },
}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def sandbox(key: rsa.RSAPrivateKey) -> Iterator[MonetateSandbox]:
    with MonetateSandbox("acme") as sb:
        sb.register_key(USER, public_pem(key))
        sb.add_schema(CUSTOMERS)
        yield sb


def jwt_header(key: rsa.RSAPrivateKey) -> dict[str, str]:
    signed = jwt.encode({"username": USER, "iat": time.time()}, key, algorithm="RS256")
    return {"Authorization": f"JWT {signed}"}


@pytest.fixture
def session(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey) -> requests.Session:
    s = requests.Session()
    token = s.get(sandbox.auth_url, headers=jwt_header(key), timeout=5).json()["data"]["token"]
    s.headers["Authorization"] = f"Token {token}"
    return s


def post(sb: MonetateSandbox, s: requests.Session, body: Any, schema: str = "customers") -> requests.Response:
    return s.post(f"{sb.data_url}/data/{schema}/", json=body, timeout=5)


# --- what a client may send ----------------------------------------------------------------------


@pytest.mark.sends_invalid_requests
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/schema/", {"page_size": "5"}, "page_size"),
        ("/schema/", {"row_count": "yes"}, "row_count"),
        ("/schema/customers/", {"usable_in_accounts": "true"}, "usable_in_accounts"),
        ("/upload/customers/", {"limit": "1"}, "limit"),
        ("/data/customers/", {"id": "c1", "fields": "tier"}, "fields"),
    ],
)
def test_a_query_parameter_the_reference_does_not_declare_is_400_naming_it(
    sandbox: MonetateSandbox, session: requests.Session, path: str, params: dict[str, str], field: str
) -> None:
    # Given a query parameter the endpoint does not declare (or a boolean that is not true/false)
    # When it is sent  Then 400 names it, and nothing else happened
    answer = session.get(f"{sandbox.data_url}{path}", params=params, timeout=5)
    assert answer.status_code == 400
    assert field in [e.get("field") for e in answer.json()["meta"]["errors"]]


@pytest.mark.sends_invalid_requests
def test_a_repeated_parameter_or_a_get_body_is_400(
    sandbox: MonetateSandbox, session: requests.Session
) -> None:
    twice = session.get(f"{sandbox.data_url}/data/customers/?id=c1&id=c2", timeout=5)
    body = session.get(f"{sandbox.data_url}/schema/", data=b"{}", timeout=5)
    assert (twice.status_code, body.status_code) == (400, 400)
    assert "more than once" in twice.text and "no body" in body.text


@pytest.mark.sends_invalid_requests
@pytest.mark.parametrize(
    "body",
    [
        {"schema_rows": [{"customer_id": "c1"}], "schema": "customers"},
        {"schema_rows": [{"customer_id": "c1"}], "_sent_time": "yesterday"},
        {"schema_rows": [{"customer_id": "c1"}], "_sent_time": "2024-05-01"},
    ],
    ids=["unknown-key", "sent-time-garbage", "sent-time-date-only"],
)
def test_a_data_post_is_schema_rows_and_an_optional_sent_time(
    sandbox: MonetateSandbox, session: requests.Session, body: dict[str, Any]
) -> None:
    answer = post(sandbox, session, body)
    assert answer.status_code == 400
    assert sandbox.rows("customers") == []


def test_a_sent_time_is_accepted_and_not_echoed(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given a POST carrying the reference's _sent_time
    rows = [{"customer_id": "c1", "tier": "gold"}]
    answer = post(sandbox, session, {"schema_rows": rows, "_sent_time": "2024-05-01T10:00:00.5+00:00"})
    # Then 201, and data is example_schemaData: the rows only; meta is code/errors/warnings only
    assert answer.status_code == 201
    meta = {"code": 201, "errors": [], "warnings": []}
    assert answer.json() == {"meta": meta, "data": {"schema_rows": rows}}


# --- what it answers -------------------------------------------------------------------------


@pytest.mark.sends_invalid_requests
def test_a_wrong_method_is_405_with_allow(sandbox: MonetateSandbox, session: requests.Session) -> None:
    answer = session.delete(f"{sandbox.data_url}/data/customers/", timeout=5)
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, POST"


def test_lists_come_in_pages_whose_next_keeps_the_flags(key: rsa.RSAPrivateKey) -> None:
    # Given 5 schemas and a page size of 2
    with MonetateSandbox("acme", page_size=2) as sb:
        sb.register_key(USER, public_pem(key))
        for i in range(5):
            sb.add_schema({**CUSTOMERS, "name": f"s{i}"})
        s = requests.Session()
        token = s.get(sb.auth_url, headers=jwt_header(key), timeout=5).json()["data"]["token"]
        s.headers["Authorization"] = f"Token {token}"
        # When listing with row_count and following meta.next
        pages = [s.get(f"{sb.data_url}/schema/", params={"row_count": "true"}, timeout=5).json()]
        while "next" in pages[-1]["meta"]:
            pages.append(s.get(pages[-1]["meta"]["next"], timeout=5).json())
    # Then 3 pages of 2, 2, 1, each schema once with its row_count, in order
    assert [p["meta"]["count"] for p in pages] == [2, 2, 1]
    assert [d["name"] for p in pages for d in p["data"]] == [f"s{i}" for i in range(5)]
    assert all(d["row_count"] == 0 for p in pages for d in p["data"])
    assert pages[2]["meta"]["previous"].endswith("page=2") and "previous" not in pages[0]["meta"]


def test_patch_answers_what_it_was_given(sandbox: MonetateSandbox, session: requests.Session) -> None:
    url = f"{sandbox.data_url}/schema/customers/"
    fields = session.patch(url, json={"fields": {"age": {"data_type": "NUMBER"}}}, timeout=5).json()["data"]
    named = session.patch(url, json={"named_identifier": "email_hash"}, timeout=5).json()["data"]
    assert set(fields) == {"fields"} and "age" in fields["fields"] and "customer_id" in fields["fields"]
    assert named == {"named_identifier": "email_hash"}


def test_a_missing_record_is_404(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given no such record  When read  Then 404 ("does not exist"), not an empty 200 ("was found")
    answer = session.get(f"{sandbox.data_url}/data/customers/", params={"id": "nobody"}, timeout=5)
    assert answer.status_code == 404


def test_path_names_are_percent_decoded(sandbox: MonetateSandbox, session: requests.Session) -> None:
    post(sandbox, session, {"schema_rows": [{"customer_id": "c1"}]})
    answer = session.get(f"{sandbox.data_url}/schema/%63ustomers/", timeout=5)
    assert answer.status_code == 200 and answer.json()["data"]["name"] == "customers"


# --- the exchange log the contract checks read ----------------------------------------------------


def test_exchanges_hold_no_credentials_and_mark_faults(
    sandbox: MonetateSandbox, session: requests.Session, key: rsa.RSAPrivateKey
) -> None:
    # Given recording on, a token minted, a faulted POST and a good one
    log = exchanges.ExchangeLog()
    with exchanges.recording(log):
        minted = session.get(sandbox.auth_url, headers=jwt_header(key), timeout=5)
        sandbox.faults = FaultConfig(error_rate=1.0, apply_to="post")
        post(sandbox, session, {"schema_rows": [{"customer_id": "c1"}]})
        sandbox.faults = FaultConfig()
        post(sandbox, session, {"schema_rows": [{"customer_id": "c1"}]})
    recorded = log.drain()
    # Then the token, the JWT and the Authorization values are nowhere in what was recorded
    token = minted.json()["data"]["token"]
    text = repr(recorded)
    assert token not in text and session.headers["Authorization"] not in text
    assert [e.header("Authorization") for e in recorded] == ["JWT ***", "Token ***", "Token ***"]
    assert json.loads(recorded[0].answer_body)["data"]["token"] == "***"
    # And only the injected answer is marked as the fault injector's
    assert [(e.status, e.origin) for e in recorded] == [(200, "endpoint"), (500, "fault"), (201, "endpoint")]
    assert recorded[2].dataset is not None and recorded[2].dataset["name"] == "customers"
    # And outside the block nothing is recorded
    post(sandbox, session, {"schema_rows": [{"customer_id": "c2"}]})
    assert log.drain() == []
