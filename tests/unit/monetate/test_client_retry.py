"""MonetateClient over a scripted transport: retries, backoff, error mapping, URLs, timeouts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.exceptions import (
    BadRequestError,
    KeyRevokedError,
    NotFoundError,
    RateLimitedError,
    TransientApiError,
    UnexpectedResponseError,
)
from monetate_ingest.monetate.retry import RetryPolicy, parse_retry_after
from monetate_ingest.monetate.transport import new_session
from requests import PreparedRequest
from requests.auth import AuthBase

BASE = "https://api.example.test/api/data/v1/acme/production"
OK: Any = (200, {"meta": {"code": 200, "errors": [], "warnings": []}, "data": {"ok": True}}, {})


def envelope(
    status: int, data: Any = None, errors: list[Any] | None = None
) -> tuple[int, Any, dict[str, str]]:
    return status, {"meta": {"code": status, "errors": errors or [], "warnings": []}, "data": data}, {}


class StaticAuth(AuthBase):
    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers["Authorization"] = "Token static"
        return r


class Script:
    """Answers from a list, then ``default``."""

    def __init__(self, *replies: Any, default: Any = OK) -> None:
        self.replies = list(replies)
        self.default = default

    def __call__(self, request: PreparedRequest) -> Any:
        return self.replies.pop(0) if self.replies else self.default


@pytest.fixture
def make(fake_http: Callable[..., Any]) -> Callable[..., Any]:
    """``client, transport, sleeps = make(*replies, max_retries=4, ...)``."""

    def build(*replies: Any, default: Any = OK, **kwargs: Any) -> tuple[MonetateClient, Any, list[float]]:
        session, transport = fake_http(Script(*replies, default=default))
        sleeps: list[float] = []
        client = MonetateClient(
            data_api_base=BASE, auth=StaticAuth(), session=session, sleep=sleeps.append, **kwargs
        )
        return client, transport, sleeps

    return build


def paths(transport: Any) -> list[str]:
    return [f"{r.method} {urlsplit(r.url).path}" for r in transport.sent]


# --- retries -----------------------------------------------------------------------------------


def test_429_waits_retry_after_then_succeeds(make: Callable[..., Any]) -> None:
    # Given a 429 asking for 3 s, then success
    client, _, sleeps = make((429, {"meta": {"code": 429}}, {"Retry-After": "3"}))
    # When rows are posted
    assert client.post_rows("s", [{"id": "1"}]) == {"ok": True}
    # Then the client waited exactly 3 s and sent twice
    assert sleeps == [3.0]
    assert client.stats == {"requests": 2, "retries": 1, "throttled": 1}


def test_retry_after_is_capped_at_backoff_cap(make: Callable[..., Any]) -> None:
    client, _, sleeps = make((429, {}, {"Retry-After": "3600"}), backoff_cap=7.5)
    client.post_rows("s", [])
    assert sleeps == [7.5]


def test_5xx_retried_with_capped_full_jitter_then_transient(make: Callable[..., Any]) -> None:
    # Given a server that always answers 500
    client, transport, sleeps = make(
        default=envelope(500, errors=[{"message": "boom"}]), max_retries=4, backoff_base=1.0, backoff_cap=5.0
    )
    # When a schema is fetched
    with pytest.raises(TransientApiError) as caught:
        client.get_schema("s")
    # Then 1 + 4 attempts were made, each wait within [0, min(cap, base * 2**n)]
    assert len(transport.sent) == 5 and client.stats == {"requests": 5, "retries": 4, "throttled": 0}
    assert len(sleeps) == 4
    for n, slept in enumerate(sleeps):
        assert 0 <= slept <= min(5.0, 1.0 * 2**n)
    assert caught.value.status == 500 and "5 attempts" in str(caught.value) and "boom" in str(caught.value)
    assert caught.value.retryable


def test_connection_errors_and_timeouts_are_retried(make: Callable[..., Any]) -> None:
    client, transport, sleeps = make(
        requests.ConnectionError("reset"),
        requests.ReadTimeout("slow"),
        default=envelope(200, [{"name": "a"}]),
    )
    assert client.list_schemas() == [{"name": "a"}]
    assert len(transport.sent) == 3 and len(sleeps) == 2


def test_connection_errors_exhausted_are_transient(make: Callable[..., Any]) -> None:
    client, transport, _ = make(default=requests.ConnectTimeout("nope"), max_retries=2)
    with pytest.raises(TransientApiError, match="ConnectTimeout"):
        client.upload_history("s")
    assert len(transport.sent) == 3


def test_html_502_is_unexpected_response_after_retries(make: Callable[..., Any]) -> None:
    # Given a proxy answering an HTML 502 page with a long body
    page = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 400 + "SECRET-TAIL</body></html>"
    client, transport, _ = make(default=(502, page, {"Content-Type": "text/html"}), max_retries=2)
    # When rows are posted  Then, after the retries, UnexpectedResponseError with status and type
    with pytest.raises(UnexpectedResponseError) as caught:
        client.post_rows("s", [])
    message = str(caught.value)
    assert len(transport.sent) == 3
    assert caught.value.status == 502 and "text/html" in message and "502 Bad Gateway" in message
    assert "<title>" not in message and "SECRET-TAIL" not in message


def test_non_json_2xx_is_unexpected_without_retry(make: Callable[..., Any]) -> None:
    client, transport, _ = make((200, "<html>hi</html>", {"Content-Type": "text/html"}))
    with pytest.raises(UnexpectedResponseError, match="200"):
        client.list_schemas()
    assert len(transport.sent) == 1


# --- permanent errors --------------------------------------------------------------------------


def test_400_carries_meta_errors_and_is_not_retried(make: Callable[..., Any]) -> None:
    # Given Monetate refusing a row
    errors = [{"field": "amount", "message": "not a number"}, {"message": "second"}]
    client, transport, _ = make(envelope(400, errors=errors))
    # When posted  Then BadRequestError with meta.errors and a summary, one request
    with pytest.raises(BadRequestError) as caught:
        client.post_rows("s", [{"amount": "x"}])
    assert caught.value.meta_errors == errors
    assert "not a number" in str(caught.value) and caught.value.status == 400
    assert len(transport.sent) == 1


def test_404_is_not_found(make: Callable[..., Any]) -> None:
    client, transport, _ = make(envelope(404))
    with pytest.raises(NotFoundError):
        client.get_schema("nope")
    assert len(transport.sent) == 1


def test_403_is_key_revoked_and_never_retried(make: Callable[..., Any]) -> None:
    client, transport, _ = make(default=envelope(403))
    with pytest.raises(KeyRevokedError):
        client.post_rows("s", [])
    assert len(transport.sent) == 1


# --- get_record ------------------------------------------------------------------------------


def test_get_record_is_never_retried_and_429_carries_retry_after(make: Callable[..., Any]) -> None:
    # Given the 1-per-second limit hit
    client, transport, sleeps = make(default=(429, {"meta": {"code": 429}}, {"Retry-After": "1"}))
    # When a record is fetched  Then RateLimitedError with retry_after, one request, no wait
    with pytest.raises(RateLimitedError) as caught:
        client.get_record("s", "42")
    assert caught.value.retry_after == 1.0
    assert len(transport.sent) == 1 and sleeps == []


def test_get_record_5xx_is_not_retried(make: Callable[..., Any]) -> None:
    client, transport, _ = make(default=envelope(500))
    with pytest.raises(TransientApiError):
        client.get_record("s", "42")
    assert len(transport.sent) == 1


# --- the wire ----------------------------------------------------------------------------------


def test_paths_and_ids_are_quoted(make: Callable[..., Any]) -> None:
    # (a schema name that would need quoting, "my schema/x", is refused: see test_names.py)
    client, transport, _ = make(default=envelope(200, {"schema_rows": []}))
    client.get_record("my-schema_2", "a&b=c d/e")
    [sent] = transport.sent
    assert urlsplit(sent.url).path == "/api/data/v1/acme/production/data/my-schema_2/"
    assert urlsplit(sent.url).query in ("id=a%26b%3Dc+d%2Fe", "id=a%26b%3Dc%20d%2Fe")


def test_every_endpoint_uses_its_method_path_and_a_timeout(make: Callable[..., Any]) -> None:
    client, transport, _ = make(default=envelope(200, []), timeout=(1.0, 2.0))
    client.list_schemas()
    client.get_schema("s")
    client.create_schema({"name": "s"})
    client.add_fields("s", {"f": {"data_type": "STRING"}})
    client.list_schema_types()
    client.post_rows("s", [{"id": "1"}])
    client.get_record("s", "1")
    client.upload_history("s")
    p = "/api/data/v1/acme/production"
    assert paths(transport) == [
        f"GET {p}/schema/",
        f"GET {p}/schema/s/",
        f"POST {p}/schema/",
        f"PATCH {p}/schema/s/",
        f"GET {p}/schematype/",
        f"POST {p}/data/s/",
        f"GET {p}/data/s/",
        f"GET {p}/upload/s/",
    ]
    assert all(kw["timeout"] == (1.0, 2.0) for kw in transport.kwargs)
    assert json.loads(transport.sent[3].body) == {"fields": {"f": {"data_type": "STRING"}}}
    assert all(r.headers["Authorization"] == "Token static" for r in transport.sent)


def test_post_body_sends_the_exact_bytes_as_json(make: Callable[..., Any]) -> None:
    client, transport, _ = make(envelope(201, {"schema_rows": []}))
    body = b'{"schema_rows":[{"id":"\\u00e9"}]}'
    client.post_body("s", body)
    [sent] = transport.sent
    assert sent.body == body and sent.headers["Content-Type"] == "application/json"


def test_lists_follow_same_origin_next_pages_only(make: Callable[..., Any]) -> None:
    page1: Any = (200, {"meta": {"code": 200, "next": f"{BASE}/schema/?page=2"}, "data": [{"name": "a"}]}, {})
    page2: Any = (200, {"meta": {"code": 200, "next": "https://evil.test/x"}, "data": [{"name": "b"}]}, {})
    client, transport, _ = make(page1, page2)
    assert [s["name"] for s in client.list_schemas()] == ["a", "b"]
    assert len(transport.sent) == 2


def test_new_session_pools_at_least_16_connections() -> None:
    adapter = new_session().get_adapter("https://api.monetate.net")
    assert adapter._pool_maxsize >= 16  # type: ignore[attr-defined]


# --- the policy --------------------------------------------------------------------------------


def test_policy_is_capped_full_jitter() -> None:
    seen: list[tuple[float, float]] = []

    def rand(lo: float, hi: float) -> float:
        seen.append((lo, hi))
        return hi

    policy = RetryPolicy(max_retries=9, base=0.2, cap=2.0, rand=rand)
    delays = [policy.backoff(n) for n in range(6)]
    assert seen == [(0.0, d) for d in delays]
    assert delays == pytest.approx([0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert policy.delay(0, retry_after=9.0) == 2.0 and policy.delay(0, retry_after=0.5) == 0.5


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0
    assert parse_retry_after("-5") == 0.0


# --- throttle signal and the POST echo -----------------------------------------------------------


def test_retried_429s_are_counted_for_callers_that_adapt_their_concurrency(make: Callable[..., Any]) -> None:
    # Given two 429s then success
    client, _, _ = make((429, {"meta": {"code": 429}}, {}), (429, {"meta": {"code": 429}}, {}))
    # When rows are posted
    client.post_body("s", b'{"schema_rows":[{"id":"1"}]}')
    # Then the client says it was throttled twice (and retried twice)
    assert client.stats["throttled"] == 2 and client.stats["retries"] == 2


def test_a_long_2xx_echo_is_not_parsed_but_still_checked(make: Callable[..., Any]) -> None:
    # Given Monetate answers a big POST with its envelope echoing every row back
    rows = [{"id": str(i), "email": f"u{i}@example.com"} for i in range(2000)]
    echo = {"meta": {"code": 201, "errors": [], "warnings": []}, "data": {"schema_rows": rows}}
    client, _, _ = make(default=(201, echo, {}))
    # When the rows are posted  Then the call succeeds without handing back the echo
    assert client.post_body("s", json.dumps({"schema_rows": rows}).encode()) == {}


def test_a_long_2xx_answer_that_is_not_the_envelope_is_still_an_error(make: Callable[..., Any]) -> None:
    # Given a proxy answers 200 with a long HTML page
    page = "<html>" + "x" * 40_000 + "</html>"
    client, _, _ = make(default=(200, page, {"Content-Type": "text/html"}))
    # When rows are posted  Then it is a typed error, not a silent success
    with pytest.raises(UnexpectedResponseError):
        client.post_body("s", b'{"schema_rows":[{"id":"1"}]}')


class FlakyMintAuth(AuthBase):
    """An auth whose token mint fails transiently ``failures`` times (Monetate's auth had a 5xx)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        if self.failures:
            self.failures -= 1
            raise TransientApiError("could not mint a Monetate token: HTTP 500")
        r.headers["Authorization"] = "Token fresh"
        return r


def test_a_transient_token_mint_failure_is_retried_within_the_calls_budget(
    fake_http: Callable[..., Any],
) -> None:
    # Given the token mint fails twice before it works
    session, transport = fake_http(Script())
    sleeps: list[float] = []
    client = MonetateClient(
        data_api_base=BASE, auth=FlakyMintAuth(2), session=session, sleep=sleeps.append, max_retries=4
    )
    # When rows are posted  Then the call succeeds on the third attempt, after two back-offs
    assert client.post_rows("s", [{"id": "1"}]) == {"ok": True}
    assert len(sleeps) == 2 and client.stats["retries"] == 2
    assert len(transport.sent) == 1
