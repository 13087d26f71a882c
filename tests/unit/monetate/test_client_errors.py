"""What a person sees when the Data API refuses: an unexpected 4xx, a 401 a fresh token did not cure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monetate_ingest.monetate.auth import TokenAuth
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.credentials import parse_secret
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    BadRequestError,
    PermanentApiError,
    UnexpectedResponseError,
)
from monetate_ingest.monetate.tokens import TokenProvider
from requests import PreparedRequest

API = "https://api.example.test"
BASE = f"{API}/api/data/v1/acme/production"
NGINX_413 = (
    "<html><head><title>413 Request Entity Too Large</title></head><body><center>"
    "<h1>413 Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>"
)


class Monetate:
    """Mints token-N; every data call is answered ``data_reply``."""

    def __init__(self, data_reply: Any) -> None:
        self.data_reply = data_reply
        self.data_calls = 0

    def __call__(self, request: PreparedRequest) -> Any:
        if "/api/auth/" in str(request.url):
            data = {"token": "token-secret-value", "expires_in": 3600}
            return 200, {"meta": {"code": 200}, "data": data}, {}
        self.data_calls += 1
        return self.data_reply


@pytest.fixture
def make(fake_http: Callable[..., Any], secret_text: str) -> Callable[..., Any]:
    """``client, monetate = make(reply)``: a client with real TokenAuth against a fake Monetate."""

    def build(reply: Any) -> tuple[MonetateClient, Monetate]:
        monetate = Monetate(reply)
        session, _ = fake_http(monetate)

        class Secret:
            def get(self) -> Any:
                return parse_secret(secret_text)

            refresh = get

        tokens = TokenProvider(Secret(), f"{API}/api/auth/v0/refresh/", session=session)
        client = MonetateClient(
            data_api_base=BASE, auth=TokenAuth(tokens), session=session, sleep=lambda s: None
        )
        return client, monetate

    return build


def envelope(status: int, errors: list[Any] | None = None) -> Any:
    return status, {"meta": {"code": status, "errors": errors or [], "warnings": []}, "data": None}, {}


@pytest.mark.parametrize("status", [405, 409, 413, 415, 422])
def test_an_unexpected_4xx_is_permanent_and_names_status_method_and_path(
    make: Callable[..., Any], status: int
) -> None:
    # Given the Data API answers a POST with a 4xx this client has no special meaning for
    client, monetate = make(envelope(status, errors=[{"message": "nope"}]))
    # When rows are posted
    with pytest.raises(PermanentApiError) as caught:
        client.post_rows("purchases", [{"id": "1"}])
    # Then it is permanent (not retried, not a 400 to bisect), and the message names the status,
    # the method and the path, Monetate's own words, and never the token
    error = caught.value
    assert type(error) is PermanentApiError and error.status == status and not error.retryable
    message = str(error)
    path = "/api/data/v1/acme/production/data/purchases/"
    assert message.startswith(f"POST {path}: Monetate answered HTTP {status} ")
    assert "not retried" in message and "nope" in message
    assert "token-secret-value" not in message and "Token " not in message
    assert monetate.data_calls == 1


def test_405_says_method_not_allowed(make: Callable[..., Any]) -> None:
    client, _ = make(envelope(405))
    with pytest.raises(PermanentApiError, match="HTTP 405 Method Not Allowed") as caught:
        client.add_fields("purchases", {"f": {"data_type": "STRING"}})
    assert str(caught.value).startswith("PATCH /api/data/v1/acme/production/schema/purchases/:")


def test_a_proxys_html_413_is_permanent_not_a_transient_proxy_page(make: Callable[..., Any]) -> None:
    # Given a proxy in front of Monetate refusing a big body with its own HTML page
    client, monetate = make((413, NGINX_413, {"Content-Type": "text/html"}))
    # When rows are posted
    with pytest.raises(PermanentApiError) as caught:
        client.post_body("purchases", b'{"schema_rows":[{"id":"1"}]}')
    # Then it is a permanent error (retrying the same body cannot help), sent once, that names
    # the status and its meaning, the content type and the page's words, without the tags
    error = caught.value
    assert not isinstance(error, UnexpectedResponseError) and not isinstance(error, BadRequestError)
    message = str(error)
    assert "POST /api/data/v1/acme/production/data/purchases/" in message
    assert "HTTP 413 Request Entity Too Large" in message and "(text/html)" in message
    assert "<title>" not in message and monetate.data_calls == 1


def test_a_non_json_400_is_still_an_unexpected_answer(make: Callable[..., Any]) -> None:
    # A 400 without Monetate's envelope cannot say which rows were refused: not bisected as one
    client, _ = make((400, "<html>Bad Request</html>", {"Content-Type": "text/html"}))
    with pytest.raises(UnexpectedResponseError, match="HTTP 400"):
        client.post_rows("purchases", [{"id": "1"}])


def test_a_401_a_fresh_token_did_not_cure_says_what_to_check(make: Callable[..., Any]) -> None:
    # Given the Data API answers 401 to every token, the freshly minted one included
    client, monetate = make(envelope(401))
    # When rows are posted
    with pytest.raises(AuthenticationError) as caught:
        client.post_rows("purchases", [{"id": "1"}])
    # Then after the one re-mint and re-send, the error tells a person what to check
    message = str(caught.value)
    assert monetate.data_calls == 2 and caught.value.status == 401
    assert "even to a freshly minted token" in message
    assert "MONETATE_RETAILER" in message and "MONETATE_ENVIRONMENT" in message
    assert "Authorization header" in message and "not retried" in message
    assert "token-secret-value" not in message


def test_a_401_to_the_single_record_get_says_the_next_call_mints_afresh(make: Callable[..., Any]) -> None:
    # Given a token Monetate refuses  When a person spot-checks a record (sent at most once)
    client, monetate = make(envelope(401))
    with pytest.raises(AuthenticationError) as caught:
        client.get_record("purchases", "1")
    # Then it was sent once, and the message does not claim a fresh token was tried
    assert monetate.data_calls == 1
    message = str(caught.value)
    assert "freshly minted" not in message and "the next call mints a new one" in message
