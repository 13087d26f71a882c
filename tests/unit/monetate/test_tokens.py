"""TokenProvider: minting, caching until shortly before expiry, thread safety, error mapping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from monetate_ingest.errors import SettingsError
from monetate_ingest.monetate.credentials import Credentials, parse_secret
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    KeyRevokedError,
    TransientApiError,
    UnexpectedResponseError,
)
from monetate_ingest.monetate.retry import RetryPolicy
from monetate_ingest.monetate.tokens import TokenProvider
from requests import PreparedRequest

REFRESH_URL = "https://api.example.test/api/auth/v0/refresh/"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCredentials:
    """get()/refresh() over a list of credentials; refresh moves to the next one."""

    def __init__(self, *creds: Credentials) -> None:
        self.creds = list(creds)
        self.refreshes = 0

    def get(self) -> Credentials:
        return self.creds[min(self.refreshes, len(self.creds) - 1)]

    def refresh(self) -> Credentials:
        self.refreshes += 1
        return self.get()


class AuthServer:
    """Answers the refresh endpoint like Monetate; ``script`` overrides the next answers."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.script: list[Any] = []
        self.minted = 0
        self.expires_in: int | None = None

    def __call__(self, request: PreparedRequest) -> Any:
        if self.script:
            return self.script.pop(0)
        ttl = int(parse_qs(urlsplit(str(request.url)).query)["ttl"][0])
        self.minted += 1
        expires_in = self.expires_in or ttl
        data = {
            "token": f"token-{self.minted}",
            "issued_at": self.clock.now,
            "expires_in": expires_in,
            "expires_at": self.clock.now + expires_in,
        }
        return 200, {"meta": {"code": 200, "errors": [], "warnings": []}, "data": data}, {}


@pytest.fixture
def creds(secret_text: str) -> Credentials:
    return parse_secret(secret_text)


@pytest.fixture
def rig(fake_http: Callable[..., Any], creds: Credentials) -> Any:
    """A provider wired to a fake auth server, a fake clock and recorded sleeps."""

    class Rig:
        clock = Clock()
        server = AuthServer(clock)
        source = FakeCredentials(creds)
        sleeps: list[float] = []

        def __init__(self) -> None:
            self.session, self.transport = fake_http(self.server)

        def provider(self, **kwargs: Any) -> TokenProvider:
            kwargs.setdefault("ttl", 3600)
            return TokenProvider(
                self.source,
                REFRESH_URL,
                session=self.session,
                clock=self.clock,
                sleep=self.sleeps.append,
                **kwargs,
            )

    return Rig()


def test_mints_with_a_signed_jwt_and_the_ttl(rig: Any, key_pair: Any) -> None:
    # Given a provider asking for 900-second tokens
    provider = rig.provider(ttl=900)
    # When a token is requested
    token = provider.token()
    # Then it is the minted token, fetched by GET ?ttl=900 with "JWT <signed jwt>"
    assert token == "token-1" and provider.mints == 1
    [sent] = rig.transport.sent
    assert sent.method == "GET"
    assert urlsplit(sent.url).path == "/api/auth/v0/refresh/"
    assert parse_qs(urlsplit(sent.url).query) == {"ttl": ["900"]}
    scheme, encoded = sent.headers["Authorization"].split(" ", 1)
    assert scheme == "JWT"
    claims = jwt.decode(encoded, key_pair.public_pem, algorithms=["RS256"], options={"verify_iat": False})
    assert claims == {"username": "api-123-example", "iat": int(rig.clock.now)}
    # And every mint has a timeout
    assert rig.transport.kwargs[0]["timeout"] == (3.05, 30.0)


def test_reuses_the_token_until_shortly_before_expiry(rig: Any) -> None:
    # Given a token minted for 3600 s (refresh margin 60 s)
    provider = rig.provider(ttl=3600)
    start = rig.clock.now
    assert provider.token() == "token-1"
    # When asked again 61 s before expiry  Then the cached token comes back
    rig.clock.now = start + 3600 - 61
    assert provider.token() == "token-1"
    # When asked 59 s before expiry  Then a new token is minted
    rig.clock.now = start + 3600 - 59
    assert provider.token() == "token-2"
    assert provider.mints == 2 and len(rig.transport.sent) == 2


def test_expires_at_tells_when_the_cached_token_expires(rig: Any) -> None:
    # Given a provider that has not minted yet  Then it knows no expiry
    provider = rig.provider(ttl=3600)
    assert provider.expires_at is None
    # When a token for 3600 s is minted  Then its expiry is start + 3600, without exposing it
    start = rig.clock.now
    provider.token()
    assert provider.expires_at == pytest.approx(start + 3600)


def test_margin_is_a_tenth_of_short_ttls(rig: Any) -> None:
    # Given a 600 s ttl (margin min(60, 60) = 60) and a server granting only 100 s
    rig.server.expires_in = 100
    provider = rig.provider(ttl=600)
    start = rig.clock.now
    provider.token()
    # When 39 s have passed  Then still cached; after 41 s (inside the margin) re-minted
    rig.clock.now = start + 39
    assert provider.token() == "token-1"
    rig.clock.now = start + 41
    assert provider.token() == "token-2"


def test_eight_threads_at_once_mint_one_token(rig: Any) -> None:
    # Given a mint that is held until every thread has asked
    gate = threading.Event()
    inner = rig.server

    def slow(request: PreparedRequest) -> Any:
        gate.wait(timeout=5)
        return inner(request)

    rig.transport.handler = slow
    provider = rig.provider()
    start = threading.Barrier(8)
    results: list[str] = []

    def ask() -> None:
        start.wait()
        results.append(provider.token())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    # When all eight ask at once
    gate.set()
    for t in threads:
        t.join(timeout=10)
    # Then one token was minted and all got it
    assert results == ["token-1"] * 8
    assert provider.mints == 1 and len(rig.transport.sent) == 1


def test_invalidate_drops_only_the_current_token(rig: Any) -> None:
    # Given a current token
    provider = rig.provider()
    old = provider.token()
    # When a stale token is invalidated  Then nothing changes
    provider.invalidate("some-other-token")
    assert provider.token() == old
    # When the current one is invalidated  Then the next call mints
    provider.invalidate(old)
    assert provider.token() == "token-2"


def test_401_rereads_the_secret_once_then_succeeds(rig: Any) -> None:
    # Given Monetate refusing the first JWT (the key was rotated)
    rig.server.script = [(401, {"meta": {"code": 401, "errors": []}, "data": {}}, {})]
    provider = rig.provider()
    # When a token is requested  Then the secret is re-read once and the retry succeeds
    assert provider.token() == "token-1"
    assert rig.source.refreshes == 1 and len(rig.transport.sent) == 2


def test_second_401_is_an_authentication_error(rig: Any) -> None:
    # Given Monetate refusing every JWT
    refused: Any = (401, {"meta": {"code": 401, "errors": []}, "data": {}}, {})
    rig.server.script = [refused, refused, refused]
    provider = rig.provider()
    # When a token is requested  Then AuthenticationError after exactly two attempts
    with pytest.raises(AuthenticationError, match="api-123-example"):
        provider.token()
    assert rig.source.refreshes == 1 and len(rig.transport.sent) == 2


def test_403_is_key_revoked_without_retry(rig: Any) -> None:
    # Given a revoked key  When a token is requested  Then KeyRevokedError after one request
    rig.server.script = [(403, {"meta": {"code": 403, "errors": []}, "data": {}}, {})]
    with pytest.raises(KeyRevokedError):
        rig.provider().token()
    assert len(rig.transport.sent) == 1 and rig.source.refreshes == 0


def test_5xx_and_connection_errors_are_retried_with_backoff(rig: Any) -> None:
    # Given a 503 then a connection error, then a healthy server
    rig.server.script = [(503, {"meta": {"code": 503}, "data": {}}, {}), requests.ConnectionError("reset")]
    provider = rig.provider(retry=RetryPolicy(max_retries=2, base=0.5, cap=5.0, rand=lambda lo, hi: hi))
    # When a token is requested  Then it succeeds on the third attempt after two jittered waits
    assert provider.token() == "token-1"
    assert rig.sleeps == [0.5, 1.0]


def test_persistent_5xx_is_transient(rig: Any) -> None:
    # Given a server that keeps failing
    rig.server.script = [(500, {"meta": {"code": 500}, "data": {}}, {})] * 3
    # When a token is requested  Then TransientApiError after 1 + 2 attempts
    with pytest.raises(TransientApiError, match="3 attempts"):
        rig.provider().token()
    assert len(rig.transport.sent) == 3


def test_non_json_answer_is_unexpected(rig: Any) -> None:
    # Given an HTML page with 200  When a token is requested  Then UnexpectedResponseError
    rig.server.script = [(200, "<html>login</html>", {"Content-Type": "text/html"})]
    with pytest.raises(UnexpectedResponseError, match="text/html"):
        rig.provider().token()


@pytest.mark.parametrize("ttl", [599, 43201, 0, -1])
def test_ttl_out_of_range_is_a_settings_error(rig: Any, ttl: int) -> None:
    with pytest.raises(SettingsError, match="MONETATE_TOKEN_TTL"):
        rig.provider(ttl=ttl)


@pytest.mark.parametrize("ttl", [600, 43200])
def test_ttl_bounds_are_accepted(rig: Any, ttl: int) -> None:
    assert rig.provider(ttl=ttl).ttl == ttl
