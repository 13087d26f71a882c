"""Auth API rules of the sandbox: JWT scheme, algorithms, iat, ttl, revocation, token expiry."""

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


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def sandbox(key: rsa.RSAPrivateKey) -> Iterator[MonetateSandbox]:
    with MonetateSandbox("acme") as sb:
        sb.register_key(USER, public_pem(key))
        yield sb


def signed(key: Any, *, algorithm: str = "RS256", **claims: Any) -> str:
    payload = {"username": USER, "iat": time.time(), **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm=algorithm)


def refresh(sb: MonetateSandbox, authorization: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": authorization} if authorization else {}
    return requests.get(sb.auth_url, headers=headers, params=params, timeout=5)


def list_schemas(sb: MonetateSandbox, token: str) -> requests.Response:
    return requests.get(f"{sb.data_url}/schema/", headers={"Authorization": f"Token {token}"}, timeout=5)


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512"])
def test_a_valid_jwt_gets_a_token_in_the_envelope(
    sandbox: MonetateSandbox, key: rsa.RSAPrivateKey, algorithm: str
) -> None:
    # Given a JWT signed with the registered key
    token = signed(key, algorithm=algorithm)
    # When it is traded for a token with the default ttl
    before = time.time()
    answer = refresh(sandbox, f"JWT {token}")
    # Then the envelope carries a token valid for one hour
    assert answer.status_code == 200
    body = answer.json()
    assert body["meta"] == {"code": 200, "errors": [], "warnings": []}
    data = body["data"]
    assert isinstance(data["token"], str) and data["token"]
    assert data["expires_in"] == 3600
    assert before - 1 <= data["issued_at"] <= time.time() + 1
    assert data["expires_at"] == pytest.approx(data["issued_at"] + 3600)
    assert list_schemas(sandbox, data["token"]).status_code == 200


@pytest.mark.sends_invalid_requests
@pytest.mark.parametrize("scheme", ["Bearer", "Token", "jwt"])
def test_any_scheme_but_jwt_is_refused(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey, scheme: str) -> None:
    # Given a valid JWT sent under another scheme
    # When it is presented
    answer = refresh(sandbox, f"{scheme} {signed(key)}")
    # Then the sandbox answers 401 in the envelope
    assert answer.status_code == 401
    assert answer.json()["meta"]["errors"]


@pytest.mark.sends_invalid_requests
def test_a_missing_authorization_header_is_refused(sandbox: MonetateSandbox) -> None:
    # Given no Authorization header / When refreshing / Then 401
    assert refresh(sandbox, None).status_code == 401


def test_an_unknown_username_is_refused(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey) -> None:
    # Given a JWT naming a user with no registered key
    token = signed(key, username="api-999-nobody")
    # When / Then it is refused
    assert refresh(sandbox, f"JWT {token}").status_code == 401


def test_a_jwt_signed_with_another_key_is_refused(
    sandbox: MonetateSandbox, other_key: rsa.RSAPrivateKey
) -> None:
    # Given a JWT for the user signed with a key that is not theirs
    # When / Then it is refused
    assert refresh(sandbox, f"JWT {signed(other_key)}").status_code == 401


@pytest.mark.parametrize("algorithm", ["HS256", "none"])
def test_non_rsa_algorithms_are_refused(sandbox: MonetateSandbox, algorithm: str) -> None:
    # Given a JWT with a symmetric or no signature
    secret: Any = "a-shared-secret-of-sufficient-length-123" if algorithm == "HS256" else None
    token = jwt.encode({"username": USER, "iat": time.time()}, secret, algorithm=algorithm)
    # When / Then it is refused
    assert refresh(sandbox, f"JWT {token}").status_code == 401


@pytest.mark.parametrize(
    ("iat_offset", "status"),
    [(None, 401), (-120, 401), (120, 401), (-50, 200), (50, 200)],
    ids=["missing", "old", "future", "recent", "slightly-ahead"],
)
def test_iat_must_be_within_sixty_seconds(
    sandbox: MonetateSandbox, key: rsa.RSAPrivateKey, iat_offset: int | None, status: int
) -> None:
    # Given a JWT whose iat is absent or offset from now
    iat = None if iat_offset is None else time.time() + iat_offset
    claims = {"username": USER} if iat is None else {"username": USER, "iat": iat}
    token = jwt.encode(claims, key, algorithm="RS256")
    # When / Then only an iat within 60 s passes
    assert refresh(sandbox, f"JWT {token}").status_code == status


@pytest.mark.sends_invalid_requests
@pytest.mark.parametrize(
    ("ttl", "status"),
    [("600", 200), ("43200", 200), ("599", 400), ("43201", 400), ("abc", 400), ("1.5", 400)],
)
def test_ttl_is_an_integer_from_600_to_43200(
    sandbox: MonetateSandbox, key: rsa.RSAPrivateKey, ttl: str, status: int
) -> None:
    # Given a valid JWT and a ttl
    # When a token is requested
    answer = refresh(sandbox, f"JWT {signed(key)}", ttl=ttl)
    # Then in-range integers are honoured and the rest are 400
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["data"]["expires_in"] == int(ttl)


def test_a_revoked_key_gets_403_on_auth_and_on_data(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey) -> None:
    # Given a token minted before the key is revoked
    token = refresh(sandbox, f"JWT {signed(key)}").json()["data"]["token"]
    # When the key is revoked
    sandbox.revoke_key(USER)
    # Then both a new JWT and the old token get 403
    assert refresh(sandbox, f"JWT {signed(key)}").status_code == 403
    assert list_schemas(sandbox, token).status_code == 403


def test_expire_tokens_makes_live_tokens_401_and_a_new_mint_works(
    sandbox: MonetateSandbox, key: rsa.RSAPrivateKey
) -> None:
    # Given a live token
    token = refresh(sandbox, f"JWT {signed(key)}").json()["data"]["token"]
    # When the sandbox expires all tokens early
    assert sandbox.expire_tokens() == 1
    # Then the token gets 401 and a freshly minted one works
    assert list_schemas(sandbox, token).status_code == 401
    fresh = refresh(sandbox, f"JWT {signed(key)}").json()["data"]["token"]
    assert list_schemas(sandbox, fresh).status_code == 200
    assert sandbox.counts["token_mints"] == 2


def test_tokens_expire_at_expires_at(key: rsa.RSAPrivateKey) -> None:
    # Given a sandbox on a controllable clock and a 600 s token
    now = [time.time()]
    with MonetateSandbox("acme", clock=lambda: now[0]) as sb:
        sb.register_key(USER, public_pem(key))
        token = refresh(sb, f"JWT {signed(key, iat=now[0])}", ttl=600).json()["data"]["token"]
        # When the clock passes expires_at
        now[0] += 599
        before = list_schemas(sb, token).status_code
        now[0] += 1
        after = list_schemas(sb, token).status_code
    # Then the token works until then and gets 401 from then on
    assert (before, after) == (200, 401)


@pytest.mark.sends_invalid_requests
@pytest.mark.parametrize("authorization", [None, "JWT abc", "Token not-a-token", "Bearer x"])
def test_data_api_requires_a_known_token(sandbox: MonetateSandbox, authorization: str | None) -> None:
    # Given a missing, mis-schemed or unknown token
    headers = {"Authorization": authorization} if authorization else {}
    # When calling the Data API
    answer = requests.get(f"{sandbox.data_url}/schema/", headers=headers, timeout=5)
    # Then 401 in the envelope
    assert answer.status_code == 401
    assert answer.json()["meta"]["code"] == 401


@pytest.mark.sends_invalid_requests
def test_mints_are_counted_once_each(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey) -> None:
    # Given three successful mints and one refused
    for _ in range(3):
        assert refresh(sandbox, f"JWT {signed(key)}").status_code == 200
    assert refresh(sandbox, "Bearer nope").status_code == 401
    # When / Then only the successes are counted
    assert sandbox.counts["token_mints"] == 3
