"""The contract checker on hand-made exchanges: each kind of drift it must catch, and what it lets by."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.sandbox.contract import ContractChecker, Violation
from local.sandbox.exchanges import Exchange

BASE = "http://127.0.0.1:9"
DATA = "/api/data/v1/acme/production"
CUSTOMERS = {
    "name": "customers",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True},
        "points": {"data_type": "NUMBER"},
        "joined": {"data_type": "DATETIME"},
    },
}
TOKEN = (("Authorization", "Token ***"), ("Accept", "application/json"))
JSON = (("Content-Type", "application/json"),)


def meta(code: int, **extra: Any) -> dict[str, Any]:
    return {"code": code, "errors": [], "warnings": [], **extra}


def exchange(
    method: str,
    path: str,
    status: int,
    answer: Any,
    *,
    body: Any = None,
    query: tuple[tuple[str, str], ...] = (),
    headers: tuple[tuple[str, str], ...] = TOKEN,
    answer_headers: tuple[tuple[str, str], ...] = JSON,
    dataset: dict[str, Any] | None = None,
    origin: Any = "endpoint",
    rows_checked: bool = True,
) -> Exchange:
    sent = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    if sent:
        headers = (*headers, ("Content-Type", "application/json"))
    raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    return Exchange(
        BASE,
        "acme",
        "production",
        method,
        path,
        query,
        headers,
        sent,
        status,
        answer_headers,
        raw,
        origin,
        dataset,
        rows_checked,
    )


def record_get(answer_data: Any, status: int = 200) -> Exchange:
    return exchange(
        "GET",
        f"{DATA}/data/customers/",
        status,
        {"meta": meta(status), "data": answer_data},
        query=(("id", "c1"),),
        dataset=CUSTOMERS,
    )


def messages(found: list[Violation]) -> list[str]:
    return [str(v) for v in found]


@pytest.fixture(scope="module")
def checker() -> ContractChecker:
    return ContractChecker()


# --- drift it catches -------------------------------------------------------------------------


def test_the_old_record_get_answer_is_caught(checker: ContractChecker) -> None:
    # Given the sandbox answering the single-record GET with the record itself as data (issue 13)
    found = checker.check(record_get({"customer_id": "c1", "points": 3, "joined": None}))
    # Then the checker names the path, the method, the status and what the reference wanted
    assert found and all(v.side == "answer" for v in found)
    text = "\n".join(messages(found))
    assert f"GET {DATA}/data/customers/ → 200" in text
    assert "'schema_rows' is a required property" in text


def test_a_record_that_breaks_the_dataset_schema_is_caught(checker: ContractChecker) -> None:
    # Given an answer whose row has a NUMBER as text and a field the schema does not have
    found = checker.check(record_get({"schema_rows": [{"customer_id": "c1", "points": "3", "tier": "x"}]}))
    text = "\n".join(messages(found))
    assert "data.schema_rows[0].points: '3' is not of type 'number'" in text
    assert "'tier' was unexpected" in text


def test_a_field_the_reference_does_not_name_is_caught_in_the_meta(checker: ContractChecker) -> None:
    body = {"schema_rows": [{"customer_id": "c1"}]}
    ex = exchange(
        "POST",
        f"{DATA}/data/customers/",
        201,
        {"meta": meta(201, count=1), "data": body},
        body=body,
        dataset=CUSTOMERS,
    )
    assert "'count' was unexpected" in "\n".join(messages(checker.check(ex)))


def test_null_pagination_links_are_caught(checker: ContractChecker) -> None:
    ex = exchange("GET", f"{DATA}/schema/", 200, {"meta": meta(200, count=0, next=None), "data": []})
    assert "meta.next: None" in "\n".join(messages(checker.check(ex)))


def test_a_status_the_operation_does_not_declare_is_caught(checker: ContractChecker) -> None:
    # Given a 429 to a data POST that the fault injector did not produce
    body = {"schema_rows": [{"customer_id": "c1"}]}
    ex = exchange(
        "POST", f"{DATA}/data/customers/", 429, {"meta": meta(429), "data": {}}, body=body, dataset=CUSTOMERS
    )
    assert "Unknown response http status: 429" in "\n".join(messages(checker.check(ex)))
    # And the same answer from the fault injector is exempt
    faulted = exchange("POST", f"{DATA}/data/customers/", 429, b"<html>", body=body, origin="fault")
    assert checker.check(faulted) == []


def test_meta_code_must_be_the_http_status(checker: ContractChecker) -> None:
    ex = exchange("GET", f"{DATA}/schema/", 200, {"meta": meta(201, count=0), "data": []})
    assert "meta.code is 201, the HTTP status 200" in "\n".join(messages(checker.check(ex)))


def test_a_sandbox_bug_is_never_exempt(checker: ContractChecker) -> None:
    ex = exchange("GET", f"{DATA}/schema/", 500, {"meta": meta(500), "data": {}}, origin="sandbox_error")
    assert [v.side for v in checker.check(ex)] == ["answer"]


@pytest.mark.parametrize(
    ("ex", "expected"),
    [
        (exchange("GET", f"{DATA}/schema", 404, {"meta": meta(404), "data": {}}), "its paths end with '/'"),
        (
            exchange(
                "GET", f"{DATA}/schema/", 400, {"meta": meta(400), "data": {}}, query=(("page_size", "5"),)
            ),
            "undeclared query parameter(s) page_size",
        ),
        (
            exchange(
                "GET",
                f"{DATA}/schema/",
                401,
                {"meta": meta(401), "data": {}},
                headers=(("Authorization", "Bearer ***"),),
            ),
            "needs 'Authorization: Token <…>'",
        ),
        (
            exchange(
                "GET", f"{DATA}/data/customers/", 400, {"meta": meta(400), "data": {}}, dataset=CUSTOMERS
            ),
            "Missing required query parameter: id",
        ),
        (
            exchange(
                "GET",
                f"{DATA}/data/customers/",
                400,
                {"meta": meta(400), "data": {}},
                query=(("id", "a"), ("id", "b")),
                dataset=CUSTOMERS,
            ),
            "'id' is given 2 times",
        ),
        (
            exchange(
                "POST",
                f"{DATA}/data/customers/",
                400,
                {"meta": meta(400), "data": {}},
                body={"schema_rows": [], "source": "x"},
                dataset=CUSTOMERS,
            ),
            "'source' was unexpected",
        ),
        (
            exchange(
                "POST",
                f"{DATA}/data/customers/",
                400,
                {"meta": meta(400), "data": {}},
                body={"schema_rows": [], "_sent_time": "yesterday"},
                dataset=CUSTOMERS,
            ),
            "date-time",
        ),
        (
            exchange(
                "POST",
                f"{DATA}/data/customers/",
                400,
                {"meta": meta(400), "data": {}},
                body=b'{"schema_rows": [{"customer_id": "c1", "points": NaN}]}',
                dataset=CUSTOMERS,
            ),
            "NaN is not a JSON value",
        ),
        (exchange("GET", f"{DATA}/schema/", 400, {"meta": meta(400), "data": {}}, body=b"{}"), "has no body"),
        (
            exchange(
                "GET",
                "/api/auth/v0/refresh/",
                400,
                {"meta": meta(400), "data": {}},
                headers=(("Authorization", "JWT ***"),),
                query=(("ttl", "60"),),
            ),
            "'ttl'",
        ),
    ],
    ids=[
        "no-trailing-slash",
        "undeclared-param",
        "wrong-scheme",
        "no-id",
        "id-twice",
        "body-key",
        "sent-time",
        "nan",
        "body-on-get",
        "ttl-range",
    ],
)
def test_requests_the_reference_does_not_allow_are_caught(
    checker: ContractChecker, ex: Exchange, expected: str
) -> None:
    # Given a request the reference does not allow, refused by the sandbox as it should be
    found = checker.check(ex)
    # Then the request is reported, and the refusal itself is not
    assert [v.side for v in found] == ["request"], messages(found)
    assert expected in found[0].message
    # And a test that sends it on purpose is not failed for it
    assert checker.check(ex, invalid_requests_expected=True) == []


def test_an_invalid_request_the_sandbox_accepts_is_caught_even_on_purpose(checker: ContractChecker) -> None:
    # Given a data POST with a key the reference does not define, answered 201
    body = {"schema_rows": [{"customer_id": "c1"}], "source": "x"}
    answer = {"meta": meta(201), "data": {"schema_rows": body["schema_rows"]}}
    ex = exchange("POST", f"{DATA}/data/customers/", 201, answer, body=body, dataset=CUSTOMERS)
    found = checker.check(ex, invalid_requests_expected=True)
    assert [v.side for v in found] == ["answer"]
    assert "the sandbox accepted a request the reference does not allow" in found[0].message


def test_rows_that_break_the_schema_must_be_refused(checker: ContractChecker) -> None:
    # Given a row with text in a NUMBER field (the client could not know: a stale schema)
    body = {"schema_rows": [{"customer_id": "c1", "points": "many"}]}
    refused = exchange(
        "POST",
        f"{DATA}/data/customers/",
        400,
        {"meta": meta(400, errors=[{"message": "x"}]), "data": {}},
        body=body,
        dataset=CUSTOMERS,
    )
    stored = exchange(
        "POST",
        f"{DATA}/data/customers/",
        201,
        {"meta": meta(201), "data": body},
        body=body,
        dataset=CUSTOMERS,
    )
    # Then the 400 is what the reference prescribes; a 201 is the sandbox storing a bad row
    assert checker.check(refused) == []
    assert "accepted rows that break the dataset's schema" in "\n".join(messages(checker.check(stored)))


def test_unknown_paths_and_methods_must_be_404_and_405_with_allow(checker: ContractChecker) -> None:
    wrong_status = exchange("GET", "/elsewhere/", 200, {"meta": meta(200), "data": {}})
    no_allow = exchange("DELETE", f"{DATA}/schema/", 405, {"meta": meta(405), "data": {}})
    right = exchange(
        "DELETE",
        f"{DATA}/schema/",
        405,
        {"meta": meta(405), "data": {}},
        answer_headers=(*JSON, ("Allow", "GET, POST")),
    )

    def said(ex: Exchange) -> str:
        return "\n".join(messages(checker.check(ex, invalid_requests_expected=True)))

    assert "must be 404, got 200" in said(wrong_status)
    assert "405 must say Allow: GET, POST" in said(no_allow)
    assert checker.check(right, invalid_requests_expected=True) == []


# --- what keeps to the reference ---------------------------------------------------------------


def test_the_reference_record_get_passes(checker: ContractChecker) -> None:
    row = {"customer_id": "c1", "points": 3, "joined": "2024-05-01T10:00:00Z"}
    assert checker.check(record_get({"schema_rows": [row, {**row, "points": None}]})) == []


def test_a_next_link_the_sandbox_gave_is_followed_as_given() -> None:
    checker = ContractChecker()
    link = f"{BASE}{DATA}/upload/customers/?page=2"
    answer = {"meta": meta(200, count=0, next=link), "data": []}
    first = exchange("GET", f"{DATA}/upload/customers/", 200, answer, dataset=CUSTOMERS)
    second = exchange(
        "GET",
        f"{DATA}/upload/customers/",
        200,
        {"meta": meta(200, count=0), "data": []},
        query=(("page", "2"),),
        dataset=CUSTOMERS,
    )
    # Given the second request before the first answer gave its URL: an undeclared parameter
    assert "page" in "\n".join(messages(ContractChecker().check(second)))
    # When it follows the first answer's meta.next  Then it is allowed
    assert checker.check_all([first, second]) == []
