"""TokenAuth: the Token header, one re-mint on 401, 403 as KeyRevokedError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monetate_ingest.monetate.auth import TokenAuth
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.credentials import parse_secret
from monetate_ingest.monetate.exceptions import AuthenticationError, KeyRevokedError
from monetate_ingest.monetate.tokens import TokenProvider
from requests import PreparedRequest

API = "https://api.example.test"
DATA = f"{API}/api/data/v1/acme/production"


class Monetate:
    """Fake Auth + Data API: mints token-N; data answers come from ``data_script`` then 200."""

    def __init__(self) -> None:
        self.minted = 0
        self.data_script: list[int] = []
        self.data_auth: list[str] = []
        self.data_bodies: list[bytes | None] = []

    def __call__(self, request: PreparedRequest) -> Any:
        if "/api/auth/" in str(request.url):
            self.minted += 1
            data = {"token": f"token-{self.minted}", "expires_in": 3600, "expires_at": 4e9}
            return 200, {"meta": {"code": 200}, "data": data}, {}
        self.data_auth.append(str(request.headers.get("Authorization")))
        body = request.body
        self.data_bodies.append(body.encode() if isinstance(body, str) else body)
        status = self.data_script.pop(0) if self.data_script else 201
        return status, {"meta": {"code": status, "errors": []}, "data": {"schema_rows": [{"ok": status}]}}, {}


@pytest.fixture
def api(fake_http: Callable[..., Any], secret_text: str) -> Any:
    monetate = Monetate()
    session, _ = fake_http(monetate)

    class Credentials:
        refreshes = 0

        def get(self) -> Any:
            return parse_secret(secret_text)

        def refresh(self) -> Any:
            self.refreshes += 1
            return self.get()

    tokens = TokenProvider(Credentials(), f"{API}/api/auth/v0/refresh/", session=session)
    client = MonetateClient(data_api_base=DATA, auth=TokenAuth(tokens), session=session, sleep=lambda s: None)
    return monetate, session, tokens, client


def test_sets_the_token_header(api: Any) -> None:
    monetate, session, tokens, _ = api
    # Given TokenAuth  When a request is sent
    response = session.get(f"{DATA}/schema/", auth=TokenAuth(tokens))
    # Then it carried "Token <token>" and one token was minted
    assert response.status_code == 201
    assert monetate.data_auth == ["Token token-1"] and tokens.mints == 1


def test_401_remints_once_and_resends(api: Any) -> None:
    monetate, session, tokens, _ = api
    # Given a data call that gets 401 once (token expired early)
    monetate.data_script = [401]
    # When a POST is sent with TokenAuth
    response = session.post(f"{DATA}/data/s/", data=b'{"schema_rows":[]}', auth=TokenAuth(tokens))
    # Then the token was invalidated, a new one minted and the same body re-sent once
    assert response.status_code == 201
    assert monetate.data_auth == ["Token token-1", "Token token-2"]
    assert monetate.data_bodies == [b'{"schema_rows":[]}'] * 2
    assert [r.status_code for r in response.history] == [401]
    assert tokens.mints == 2 and tokens.token() == "token-2"


def test_second_401_is_returned_and_the_client_raises_authentication_error(api: Any) -> None:
    monetate, _, _, client = api
    # Given a data API that answers 401 to every token
    monetate.data_script = [401, 401]
    # When the client posts
    with pytest.raises(AuthenticationError, match="401"):
        client.post_rows("s", [{"id": "1"}])
    # Then exactly one re-mint and one resend happened, no retries
    assert monetate.data_auth == ["Token token-1", "Token token-2"]
    assert client.stats == {"requests": 1, "retries": 0, "throttled": 0}


def test_403_raises_key_revoked_without_retry(api: Any) -> None:
    monetate, _, tokens, client = api
    # Given a revoked key
    monetate.data_script = [403, 403, 403]
    # When the client posts  Then KeyRevokedError after a single request and no re-mint
    with pytest.raises(KeyRevokedError, match="revoked"):
        client.post_rows("s", [{"id": "1"}])
    assert len(monetate.data_auth) == 1 and tokens.mints == 1
    assert client.stats == {"requests": 1, "retries": 0, "throttled": 0}


def test_403_after_the_remint_is_key_revoked(api: Any) -> None:
    monetate, session, tokens, _ = api
    # Given a 401 and then, with the fresh token, a 403
    monetate.data_script = [401, 403]
    # When a request is sent  Then KeyRevokedError
    with pytest.raises(KeyRevokedError):
        session.get(f"{DATA}/schema/", auth=TokenAuth(tokens))
    assert len(monetate.data_auth) == 2


def test_the_single_record_get_is_never_sent_twice_even_on_401(api: Any) -> None:
    monetate, _, tokens, client = api
    # Given a token Monetate no longer accepts (a 401 on the next call)
    monetate.data_script = [401]
    # When a person spot-checks a record
    with pytest.raises(AuthenticationError):
        client.get_record("s", "C1")
    # Then the GET reached Monetate once (its limit is one per second), and the stale token is gone
    assert monetate.data_auth == ["Token token-1"]
    # And the next spot check mints a fresh token and succeeds
    assert client.get_record("s", "C1") == [{"ok": 201}]
    assert monetate.data_auth == ["Token token-1", "Token token-2"] and tokens.mints == 2
