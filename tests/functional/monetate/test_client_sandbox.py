"""MonetateClient, built by the factory, against the Monetate sandbox on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.exceptions import (
    BadRequestError,
    InvalidSchemaNameError,
    KeyRevokedError,
    NotFoundError,
    RateLimitedError,
    TransientApiError,
    UnexpectedResponseError,
)

from local.sandbox import FaultConfig, MonetateSandbox

PURCHASES = {
    "name": "purchases",
    "type": "attribute",
    "fields": {
        "purchase_id": {"data_type": "STRING", "unique_key": True},
        "customer_id": {"data_type": "STRING", "identifier": True},
        "amount": {"data_type": "NUMBER"},
    },
}
ROW = {"purchase_id": "p-1", "customer_id": "c-1", "amount": 12.5}
MakeClient = Callable[..., MonetateClient]


def logged(sb: MonetateSandbox) -> list[Any]:
    """The sandbox's request log once it holds every request counted (it logs after answering)."""
    deadline = time.monotonic() + 5
    while len(sb.requests) < sb.counts["requests"] and time.monotonic() < deadline:
        threading.Event().wait(0.002)
    return sb.requests


def data_requests(sb: MonetateSandbox, method: str | None = None) -> list[Any]:
    return [r for r in logged(sb) if "/api/data/" in r.path and method in (None, r.method)]


def test_every_endpoint(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    client = make_client()
    # Given an empty sandbox  When a schema is created, listed, fetched and extended
    created = client.create_schema(PURCHASES)
    assert created["name"] == "purchases"
    assert [s["name"] for s in client.list_schemas()] == ["purchases"]
    assert set(client.get_schema("purchases")["fields"]) == set(PURCHASES["fields"])
    client.add_fields("purchases", {"channel": {"data_type": "STRING"}})
    assert "channel" in client.get_schema("purchases")["fields"]
    # And the schema types are listed
    assert "attribute" in {t["name"] for t in client.list_schema_types()}
    # When rows are posted as dicts and as pre-encoded bytes
    client.post_rows("purchases", [ROW])
    client.post_body("purchases", json.dumps({"schema_rows": [{**ROW, "purchase_id": "p-2"}]}).encode())
    # Then they are stored, readable one at a time, and in the upload history
    assert [r["purchase_id"] for r in sandbox.rows("purchases")] == ["p-1", "p-2"]
    assert client.get_record("purchases", "p-1") == ROW
    assert len(client.upload_history("purchases")) == 2
    # And a missing schema is NotFoundError
    with pytest.raises(NotFoundError):
        client.get_schema("nope")
    # With one token for all of it
    assert sandbox.counts["token_mints"] == 1 and client.tokens is not None and client.tokens.mints == 1
    assert client.credentials is not None and client.credentials.reads == 1


def test_expired_token_is_reminted_once(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    # Given a client holding a token that the sandbox then ends early
    sandbox.add_schema(PURCHASES)
    client = make_client()
    client.post_rows("purchases", [ROW])
    assert sandbox.expire_tokens() == 1
    # When rows are posted again
    client.post_rows("purchases", [{**ROW, "purchase_id": "p-2"}])
    # Then one 401, one new token, one successful re-send; the client saw one request
    posts = data_requests(sandbox, "POST")
    assert [r.status for r in posts] == [201, 401, 201]
    assert sandbox.counts["token_mints"] == 2
    assert client.stats == {"requests": 2, "retries": 0, "throttled": 0}


def test_revoked_key_is_not_retried(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    # Given a working client whose key is then revoked
    sandbox.add_schema(PURCHASES)
    client = make_client()
    client.list_schemas()
    sandbox.revoke_key("api-123-example")
    before = len(logged(sandbox))
    # When rows are posted  Then KeyRevokedError after exactly one request, no re-mint
    with pytest.raises(KeyRevokedError):
        client.post_rows("purchases", [ROW])
    assert [r.status for r in logged(sandbox)[before:]] == [403]
    assert sandbox.counts["token_mints"] == 1


def test_revoked_key_at_mint_is_not_retried(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    # Given a revoked key and no token yet  When a call is made  Then one 403 on the mint
    sandbox.revoke_key("api-123-example")
    with pytest.raises(KeyRevokedError):
        make_client().list_schemas()
    assert [r.status for r in logged(sandbox)] == [403]


def test_429_waits_retry_after(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    # Given data calls answered 429 with Retry-After: 2 until the client has waited once
    sandbox.add_schema(PURCHASES)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        sandbox.faults = FaultConfig()

    client = make_client(sleep=sleep)
    sandbox.faults = FaultConfig(rate_429=1.0, retry_after=2, apply_to="data")
    # When rows are posted
    client.post_rows("purchases", [ROW])
    # Then the client waited the 2 s asked for and the retry landed
    assert waits == [2.0]
    assert [r.status for r in data_requests(sandbox, "POST")] == [429, 201]


def test_persistent_429_is_rate_limited(
    sandbox: MonetateSandbox, make_client: MakeClient, waits: Any
) -> None:
    sandbox.add_schema(PURCHASES)
    sandbox.faults = FaultConfig(rate_429=1.0, retry_after=1.5, apply_to="data")
    with pytest.raises(RateLimitedError) as caught:
        make_client().post_rows("purchases", [ROW])
    assert caught.value.retry_after == 1.5 and waits == [1.5] * 4


def test_500s_are_retried_then_transient(
    sandbox: MonetateSandbox, make_client: MakeClient, waits: Any
) -> None:
    # Given every data call failing with 500
    sandbox.add_schema(PURCHASES)
    client = make_client()
    sandbox.faults = FaultConfig(error_rate=1.0, apply_to="data")
    # When rows are posted  Then 1 + 4 attempts, 4 capped jittered waits, TransientApiError
    with pytest.raises(TransientApiError) as caught:
        client.post_rows("purchases", [ROW])
    assert caught.value.status == 500
    assert len(data_requests(sandbox, "POST")) == 5 and len(waits) == 4
    assert all(0 <= w <= min(20.0, 0.2 * 2**n) for n, w in enumerate(waits))
    assert sandbox.rows("purchases") == []


def test_some_500s_are_absorbed(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    # Given a third of calls failing (auth included)  When 20 rows are posted one by one
    sandbox.add_schema(PURCHASES)
    sandbox.faults = FaultConfig(error_rate=0.33, seed=7)
    client = make_client()
    for i in range(20):
        client.post_rows("purchases", [{**ROW, "purchase_id": f"p-{i}"}])
    # Then all are stored and retries were counted
    assert len(sandbox.rows("purchases")) == 20 and client.stats["retries"] > 0


def test_400_carries_meta_errors(sandbox: MonetateSandbox, make_client: MakeClient) -> None:
    # Given a row whose NUMBER field is not a number  When posted
    sandbox.add_schema(PURCHASES)
    with pytest.raises(BadRequestError) as caught:
        make_client().post_rows("purchases", [{**ROW, "amount": "twelve"}])
    # Then Monetate's meta.errors come back, and nothing was retried
    assert caught.value.meta_errors and caught.value.status == 400
    assert len(data_requests(sandbox, "POST")) == 1


def test_html_502_is_unexpected_after_retries(
    sandbox: MonetateSandbox, make_client: MakeClient, waits: Any
) -> None:
    # Given a proxy answering HTML 502 pages for data calls
    sandbox.add_schema(PURCHASES)
    sandbox.faults = FaultConfig(html_error_rate=1.0, apply_to="data")
    # When rows are posted  Then UnexpectedResponseError naming status and content type
    with pytest.raises(UnexpectedResponseError) as caught:
        make_client().post_rows("purchases", [ROW])
    assert caught.value.status == 502 and "text/html" in str(caught.value)
    assert len(data_requests(sandbox, "POST")) == 5 and len(waits) == 4


def test_get_record_is_never_retried(sandbox: MonetateSandbox, make_client: MakeClient, waits: Any) -> None:
    # Given a stored row and a record GET just made
    sandbox.add_schema(PURCHASES)
    client = make_client()
    client.post_rows("purchases", [ROW])
    client.get_record("purchases", "p-1")
    # When another GET follows within the second  Then RateLimitedError at once, no wait
    with pytest.raises(RateLimitedError) as caught:
        client.get_record("purchases", "p-1")
    assert caught.value.retry_after == 1.0 and waits == []
    assert len(data_requests(sandbox, "GET")) == 2


def test_invalid_schema_names_never_reach_the_sandbox(
    sandbox: MonetateSandbox, make_client: MakeClient
) -> None:
    # Given a client against the sandbox, which holds the schema "purchases"
    sandbox.add_schema(PURCHASES)
    client = make_client()
    calls: list[Callable[[str], Any]] = [
        client.get_schema,
        lambda n: client.add_fields(n, {"channel": {"data_type": "STRING"}}),
        lambda n: client.post_rows(n, [ROW]),
        lambda n: client.post_body(n, json.dumps({"schema_rows": [ROW]}).encode()),
        lambda n: client.get_record(n, "p-1"),
        client.upload_history,
    ]
    # When every endpoint with a schema in its path is called with names that could escape it
    for name in ["..", ".", "purchases/..", "a/b", "%2F", "..%2F", "?", "purchases?id=1", "#", "", "x" * 65]:
        for call in calls:
            with pytest.raises(InvalidSchemaNameError):
                call(name)
    # Then the sandbox's request log shows no request at all, not even a token mint
    assert logged(sandbox) == [] and sandbox.counts["requests"] == 0
    # And a valid name goes through (so the log would have shown them)
    client.post_rows("purchases", [ROW])
    assert [(r.method, r.status) for r in data_requests(sandbox)] == [("POST", 201)]
