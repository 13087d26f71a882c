"""Rows: validation on POST, upsert by unique key, upload history, the single-record GET."""

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

from local.sandbox import MonetateSandbox

USER = "api-123-test"
Env = tuple[MonetateSandbox, requests.Session]
PURCHASES = {
    "name": "purchases",
    "type": "event",
    "fields": {
        "purchase_id": {"data_type": "STRING", "unique_key": True},
        "customer_id": {"data_type": "STRING", "identifier": True},
        "purchase_time": {"data_type": "DATETIME", "event_time": True},
        "tags": {"data_type": "MULTI_STRING"},
        "price": {"data_type": "NUMBER"},
        "gift": {"data_type": "BOOLEAN"},
    },
}
VISITS = {
    "name": "visits",
    "fields": {"customer_id": {"data_type": "STRING", "identifier": True}, "page": {"data_type": "STRING"}},
}
GOOD = {
    "purchase_id": "p1",
    "customer_id": "c1",
    "purchase_time": "2024-05-01T10:00:00Z",
    "tags": "a,b",
    "price": 9.5,
    "gift": False,
}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def start(key: rsa.RSAPrivateKey, **options: Any) -> tuple[MonetateSandbox, requests.Session]:
    """A started sandbox with both schemas and a session holding a token."""
    sb = MonetateSandbox("acme", **options).start()
    sb.register_key(
        USER,
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )
    sb.add_schema(PURCHASES)
    sb.add_schema(VISITS)
    session = requests.Session()
    signed = jwt.encode({"username": USER, "iat": time.time()}, key, algorithm="RS256")
    token = session.get(sb.auth_url, headers={"Authorization": f"JWT {signed}"}, timeout=5).json()
    session.headers["Authorization"] = f"Token {token['data']['token']}"
    return sb, session


@pytest.fixture
def env(key: rsa.RSAPrivateKey) -> Iterator[Env]:
    sb, session = start(key)
    yield sb, session
    sb.stop()


def post(env: Env, rows: Any, schema: str = "purchases") -> requests.Response:
    sb, session = env
    return session.post(f"{sb.data_url}/data/{schema}/", json={"schema_rows": rows}, timeout=5)


def get(env: Env, record_id: str | None, schema: str = "purchases") -> requests.Response:
    sb, session = env
    params = {} if record_id is None else {"id": record_id}
    return session.get(f"{sb.data_url}/data/{schema}/", params=params, timeout=5)


BAD_ROWS = {
    "not-an-object": ["p1"],
    "unknown-field": [{**GOOD, "colour": "red"}],
    "identifier-missing": [{k: v for k, v in GOOD.items() if k != "customer_id"}],
    "identifier-null": [{**GOOD, "customer_id": None}],
    "identifier-empty": [{**GOOD, "customer_id": ""}],
    "unique-key-missing": [{k: v for k, v in GOOD.items() if k != "purchase_id"}],
    "string-padded": [{**GOOD, "customer_id": " c1"}],
    "string-not-str": [{**GOOD, "customer_id": 17}],
    "multi-string-padded": [{**GOOD, "tags": "a,b "}],
    "number-as-string": [{**GOOD, "price": "9.5"}],
    "number-as-bool": [{**GOOD, "price": True}],
    "boolean-as-string": [{**GOOD, "gift": "false"}],
    "datetime-garbage": [{**GOOD, "purchase_time": "yesterday"}],
    "datetime-number": [{**GOOD, "purchase_time": 1714557600}],
    # DATETIME is ISO-8601 typed as format date-time (RFC 3339): a time and an offset are needed
    "datetime-date-only": [{**GOOD, "purchase_time": "2024-05-01"}],
    "datetime-naive": [{**GOOD, "purchase_time": "2024-05-01T10:00:00"}],
    "datetime-space": [{**GOOD, "purchase_time": "2024-05-01 10:00:00Z"}],
}


@pytest.mark.parametrize("rows", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_a_row_breaking_a_rule_rejects_the_whole_request(env: Env, rows: list[Any]) -> None:
    # Given a good row followed by a bad one
    # When they are posted together
    answer = post(env, [{**GOOD, "purchase_id": "ok"}, *rows])
    # Then 400 with errors and nothing stored
    assert answer.status_code == 400
    errors = answer.json()["meta"]["errors"]
    assert errors and all(e["message"] for e in errors)
    assert env[0].rows("purchases") == []


@pytest.mark.sends_invalid_requests
def test_a_non_finite_number_is_rejected(env: Env) -> None:
    # Given a body with NaN (Python's json accepts it)
    sb, session = env
    body = json.dumps({"schema_rows": [{**GOOD, "price": float("nan")}]})
    # When posted
    answer = session.post(f"{sb.data_url}/data/purchases/", data=body, timeout=5)
    # Then 400
    assert answer.status_code == 400


GOOD_ROWS = {
    "full": GOOD,
    "optional-null": {**GOOD, "tags": None, "price": None, "gift": None},
    "optional-absent": {"purchase_id": "p1", "customer_id": "c1"},
    "datetime-offset": {**GOOD, "purchase_time": "2024-05-01T10:00:00.123+02:00"},
    "integer-number": {**GOOD, "price": 3},
}


@pytest.mark.parametrize("row", GOOD_ROWS.values(), ids=GOOD_ROWS.keys())
def test_a_valid_row_is_stored_201(env: Env, row: dict[str, Any]) -> None:
    # Given a valid row
    # When posted
    answer = post(env, [row])
    # Then 201 in the envelope and the row is stored as sent
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["meta"]["code"] == 201 and body["data"]["schema_rows"] == [row]
    assert env[0].rows("purchases") == [row]


def test_row_errors_do_not_name_the_row_unless_asked(key: rsa.RSAPrivateKey) -> None:
    # Given a sandbox that hides failing rows (the default) and one that names them
    bad = [GOOD, {**GOOD, "purchase_id": "p2", "price": "x"}]
    messages = {}
    for flag in (False, True):
        sb, session = start(key, name_failing_rows=flag)
        try:
            # When a batch with a bad second row is posted
            answer = session.post(f"{sb.data_url}/data/purchases/", json={"schema_rows": bad}, timeout=5)
        finally:
            sb.stop()
        messages[flag] = answer.json()["meta"]["errors"]
    # Then only the flagged one carries the row index, and never in the message text
    assert messages[False] == [{"field": "price", "message": messages[False][0]["message"]}]
    assert messages[True][0]["row"] == 1 and messages[True][0]["field"] == "price"
    assert "1" not in messages[False][0]["message"]


@pytest.mark.sends_invalid_requests
def test_unknown_schema_is_404_and_a_malformed_body_is_400(env: Env) -> None:
    # Given the sandbox
    sb, session = env
    # When posting to an absent schema, a body without schema_rows, and non-JSON
    missing = post(env, [GOOD], schema="nope")
    no_rows = session.post(f"{sb.data_url}/data/purchases/", json={"rows": [GOOD]}, timeout=5)
    garbage = session.post(f"{sb.data_url}/data/purchases/", data=b"{nope", timeout=5)
    # Then 404, 400, 400
    assert (missing.status_code, no_rows.status_code, garbage.status_code) == (404, 400, 400)


def test_validate_rows_false_accepts_anything_shaped_like_rows(env: Env) -> None:
    # Given row validation switched off
    env[0].validate_rows = False
    # When a badly typed row is posted
    answer = post(env, [{**GOOD, "price": "lots", "extra": 1}])
    # Then it is stored
    assert answer.status_code == 201
    assert env[0].rows("purchases")[0]["price"] == "lots"


def test_rows_are_upserted_by_unique_key(env: Env) -> None:
    # Given a stored row with unique key p1
    post(env, [GOOD, {**GOOD, "purchase_id": "p2"}])
    # When a row with the same unique key is posted
    post(env, [{**GOOD, "price": 20}])
    # Then it replaces the old one in place
    assert [(r["purchase_id"], r["price"]) for r in env[0].rows("purchases")] == [("p1", 20), ("p2", 9.5)]


def test_rows_without_a_unique_key_are_appended(env: Env) -> None:
    # Given a schema without a unique key
    row = {"customer_id": "c1", "page": "/home"}
    # When the same row is posted twice
    post(env, [row], schema="visits")
    post(env, [row], schema="visits")
    # Then both copies are kept
    assert env[0].rows("visits") == [row, row]


def test_upload_history_is_newest_first_and_keeps_fifty(env: Env) -> None:
    # Given 51 posts
    sb, session = env
    for i in range(51):
        post(env, [{**GOOD, "purchase_id": f"p{i}"}])
    # When reading the upload history, following meta.next as given
    pages, url = [], f"{sb.data_url}/upload/purchases/"
    while url:
        answer = session.get(url, timeout=5).json()
        pages.append(answer)
        url = answer["meta"].get("next")
    # Then 50 COMPLETE entries, newest first, in pages of 10 whose count is the page's
    uploads = [u for page in pages for u in page["data"]]
    assert len(uploads) == 50 and [p["meta"]["count"] for p in pages] == [10] * 5
    assert {u["status"] for u in uploads} == {"COMPLETE"}
    assert [u["upload_time"] for u in uploads] == sorted((u["upload_time"] for u in uploads), reverse=True)
    # And the first page has no previous, the last no next (absent: the reference types them as URLs)
    assert "previous" not in pages[0]["meta"] and "next" not in pages[-1]["meta"]
    assert pages[1]["meta"]["previous"].startswith(sb.url)
    assert session.get(f"{sb.data_url}/upload/nope/", timeout=5).status_code == 404


def test_single_record_get_by_unique_key(env: Env) -> None:
    # Given a stored row without its optional tags
    row = {k: v for k, v in GOOD.items() if k != "tags"}
    post(env, [row])
    # When it is read by its unique key
    answer = get(env, "p1")
    # Then data holds it in schema_rows (example_schemaData), absent fields as null
    assert answer.status_code == 200
    assert answer.json()["data"] == {"schema_rows": [{**row, "tags": None}]}


def test_single_record_get_by_identifier_answers_every_match_newest_first(env: Env) -> None:
    # Given two rows with the same identifier in a schema without a unique key, and another's
    rows = [{"customer_id": "c1", "page": "/a"}, {"customer_id": "c2", "page": "/x"}]
    post(env, rows, schema="visits")
    post(env, [{"customer_id": "c1", "page": "/b"}], schema="visits")
    # When read by identifier
    answer = get(env, "c1", schema="visits")
    # Then both of c1's rows are answered, the latest first
    assert answer.status_code == 200
    assert [r["page"] for r in answer.json()["data"]["schema_rows"]] == ["/b", "/a"]


def test_single_record_get_prefers_the_unique_key_and_orders_by_last_write(env: Env) -> None:
    # Given two purchases of c1, the older one updated last
    post(env, [GOOD, {**GOOD, "purchase_id": "p2"}])
    post(env, [{**GOOD, "price": 1}])
    # When read by the unique key, and (a second later: the limit) by the identifier
    by_key = get(env, "p2")
    time.sleep(1.0)
    by_id = get(env, "c1")
    # Then the key finds one row; the identifier both, the last written first
    assert [r["purchase_id"] for r in by_key.json()["data"]["schema_rows"]] == ["p2"]
    assert [r["purchase_id"] for r in by_id.json()["data"]["schema_rows"]] == ["p1", "p2"]


def test_single_record_get_of_an_absent_id_is_404(env: Env) -> None:
    # Given no such record / When read / Then 404 in the envelope
    answer = get(env, "nobody")
    assert answer.status_code == 404 and answer.json()["meta"]["code"] == 404


@pytest.mark.sends_invalid_requests
def test_single_record_get_without_id_is_400(env: Env) -> None:
    # Given no id parameter / When read / Then 400
    assert get(env, None).status_code == 400


def test_a_second_get_within_a_second_is_429(env: Env) -> None:
    # Given a stored row
    post(env, [GOOD])
    # When it is read twice in quick succession
    first, second = get(env, "p1"), get(env, "p1")
    # Then the second is 429 in the envelope, and other endpoints are not limited
    assert first.status_code == 200
    assert second.status_code == 429 and second.json()["meta"]["code"] == 429
    assert post(env, [GOOD]).status_code == 201


def test_a_429_does_not_reset_the_one_second_window(key: rsa.RSAPrivateKey) -> None:
    # Given a sandbox on a controllable monotonic clock
    now = [1000.0]
    sb, session = start(key, monotonic=lambda: now[0])
    url = f"{sb.data_url}/data/visits/"
    try:
        # When GETs arrive at t=0, t=0.6 and t=1.0
        statuses = []
        for at in (0.0, 0.6, 1.0):
            now[0] = 1000.0 + at
            statuses.append(session.get(url, params={"id": "c1"}, timeout=5).status_code)
    finally:
        sb.stop()
    # Then the middle one is limited and the last one, a full second after the first, is served
    assert statuses == [404, 429, 404]
