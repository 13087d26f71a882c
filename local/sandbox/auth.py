"""API keys, JWT verification and opaque access tokens, as the Auth API describes."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key

ALGORITHMS = ("RS256", "RS384", "RS512")
IAT_LEEWAY = 60.0
TTL_MIN, TTL_MAX, TTL_DEFAULT = 600, 43200, 3600
_INTEGER = re.compile(r"-?[0-9]+")


class AuthError(Exception):
    """Authentication failed: ``status`` is 401 (invalid) or 403 (revoked)."""

    def __init__(self, status: int, message: str, username: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.username = username


@dataclass
class _Key:
    username: str
    public_key: Any
    key_id: int
    revoked: bool = False


@dataclass
class _Token:
    username: str
    key_id: int
    expires_at: float


@dataclass(frozen=True)
class Minted:
    """A freshly minted token."""

    token: str
    username: str
    issued_at: float
    expires_in: int
    expires_at: float


def parse_ttl(raw: str | None) -> int:
    """The ``ttl`` query value as seconds; ValueError when not an integer in range."""
    if raw is None:
        return TTL_DEFAULT
    ttl = int(raw) if _INTEGER.fullmatch(raw) else None
    if ttl is None or not TTL_MIN <= ttl <= TTL_MAX:
        raise ValueError(f"ttl must be an integer from {TTL_MIN} to {TTL_MAX}")
    return ttl


class Authority:
    """Registered public keys and the tokens minted with them."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, _Key] = {}
        self._revoked_ids: set[int] = set()
        self._tokens: dict[str, _Token] = {}
        self._next_id = 1
        self.mints = 0

    def register_key(self, username: str, public_pem: str | bytes) -> None:
        """Make ``public_pem`` the active key of ``username`` (replacing any older key)."""
        pem = public_pem.encode() if isinstance(public_pem, str) else public_pem
        public_key = load_pem_public_key(pem)
        with self._lock:
            self._keys[username] = _Key(username, public_key, self._next_id)
            self._next_id += 1

    def revoke_key(self, username: str) -> None:
        """Deactivate the key of ``username``: its JWTs and tokens now get 403."""
        with self._lock:
            key = self._keys[username]
            key.revoked = True
            self._revoked_ids.add(key.key_id)

    def mint(self, authorization: str | None, ttl_raw: str | None) -> Minted:
        """Verify ``JWT <jwt>`` (AuthError), parse ``ttl`` (ValueError) and mint a token."""
        key = self._verify_jwt(authorization)
        ttl = parse_ttl(ttl_raw)
        now = self._clock()
        token = f"1.{secrets.token_urlsafe(24)}"
        with self._lock:
            self._tokens[token] = _Token(key.username, key.key_id, now + ttl)
            self.mints += 1
        return Minted(token, key.username, now, ttl, now + ttl)

    def _verify_jwt(self, authorization: str | None) -> _Key:
        scheme, _, credential = (authorization or "").partition(" ")
        if scheme != "JWT" or not credential.strip():
            raise AuthError(401, "the Authorization header must be 'JWT <signed jwt>'")
        credential = credential.strip()
        try:
            header = jwt.get_unverified_header(credential)
            claims = jwt.decode(credential, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError(401, "the JWT is malformed") from None
        if header.get("alg") not in ALGORITHMS:
            raise AuthError(401, f"the JWT must be signed with one of {', '.join(ALGORITHMS)}")
        username = claims.get("username")
        with self._lock:
            key = self._keys.get(username) if isinstance(username, str) else None
        if key is None:
            raise AuthError(401, "no API key is registered for this username")
        try:
            claims = jwt.decode(
                credential,
                key.public_key,
                algorithms=list(ALGORITHMS),
                options={"verify_iat": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise AuthError(401, "the JWT signature is invalid", key.username) from None
        self._check_iat(claims.get("iat"), key.username)
        if key.revoked:
            raise AuthError(403, "the API key has been revoked", key.username)
        return key

    def _check_iat(self, iat: Any, username: str) -> None:
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise AuthError(401, "the JWT needs a numeric iat claim", username)
        if abs(self._clock() - iat) > IAT_LEEWAY:
            raise AuthError(401, "the JWT iat is more than 60 seconds from now", username)

    def check_token(self, authorization: str | None) -> str:
        """The username behind ``Token <token>``; AuthError 401/403 otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme != "Token" or not token.strip():
            raise AuthError(401, "the Authorization header must be 'Token <token>'")
        with self._lock:
            record = self._tokens.get(token.strip())
        if record is None:
            raise AuthError(401, "the token is not valid")
        if record.key_id in self._revoked_ids:
            raise AuthError(403, "the token's API key has been revoked", record.username)
        if self._clock() >= record.expires_at:
            raise AuthError(401, "the token has expired", record.username)
        return record.username

    def expire_tokens(self) -> int:
        """End every live token now; returns how many were live."""
        now = self._clock()
        with self._lock:
            live = [t for t in self._tokens.values() if t.expires_at > now]
            for record in live:
                record.expires_at = now
        return len(live)

    def reset_counts(self) -> None:
        """Zero the mint counter."""
        with self._lock:
            self.mints = 0
