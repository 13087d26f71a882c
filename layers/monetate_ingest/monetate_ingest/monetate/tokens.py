"""The access-token cache: mint with a signed JWT, reuse until shortly before expiry.

Thread-safe: concurrent callers share one mint (double-checked lock). Tokens and JWTs are never
logged or put in exception messages.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from requests.auth import AuthBase

from monetate_ingest.errors import SettingsError
from monetate_ingest.monetate.credentials import Credentials
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    BadRequestError,
    KeyRevokedError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
    UnexpectedResponseError,
)
from monetate_ingest.monetate.jwt_signer import sign_jwt
from monetate_ingest.monetate.retry import RetryPolicy, parse_retry_after
from monetate_ingest.observability import logger

TTL_MIN, TTL_MAX = 600, 43200


class CredentialsSource(Protocol):
    """What the provider needs from :class:`~monetate_ingest.monetate.credentials.SecretCredentials`."""

    def get(self) -> Credentials: ...

    def refresh(self) -> Credentials: ...


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float


class _JwtAuth(AuthBase):
    """``Authorization: JWT …`` (as an ``AuthBase`` so session auth and ``.netrc`` never apply)."""

    def __init__(self, jwt: str) -> None:
        self._header = f"JWT {jwt}"

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self._header
        return r


class TokenProvider:
    """Mints Monetate access tokens from ``refresh_url`` and caches the current one."""

    def __init__(
        self,
        credentials: CredentialsSource,
        refresh_url: str,
        *,
        ttl: int = 3600,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = 60.0,
        timeout: tuple[float, float] = (3.05, 30.0),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not TTL_MIN <= ttl <= TTL_MAX:
            raise SettingsError(f"MONETATE_TOKEN_TTL must be a whole number from {TTL_MIN} to {TTL_MAX}")
        self._credentials = credentials
        self._url = refresh_url
        self.ttl = ttl
        self._session = session if session is not None else requests.Session()
        self._clock = clock
        self._margin = max(0.0, min(refresh_margin, ttl / 10))
        self._timeout = timeout
        self._retry = retry or RetryPolicy(max_retries=2, base=0.2, cap=5.0)
        self._sleep = sleep
        self._lock = threading.Lock()
        self._current: _Token | None = None
        self.mints = 0

    def token(self) -> str:
        """The cached token, or a freshly minted one when it is missing or near expiry."""
        current = self._current
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        with self._lock:
            current = self._current
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            current = self._mint()
            self._current = current
            return current.value

    @property
    def expires_at(self) -> float | None:
        """When the cached token expires (epoch seconds), or None before the first mint."""
        current = self._current
        return None if current is None else current.refresh_at + self._margin

    def invalidate(self, token: str) -> None:
        """Forget ``token`` if it is still the current one (Monetate answered 401 to it)."""
        with self._lock:
            if self._current is not None and self._current.value == token:
                self._current = None

    # --- minting ------------------------------------------------------------------------------

    def _mint(self) -> _Token:
        credentials = self._credentials.get()
        rotated = False
        attempt = 0
        while True:
            started = self._clock()
            response, failure = self._request(credentials, started)
            status = response.status_code if response is not None else None
            if status == 401 and not rotated:
                # The key may have been rotated: re-read the secret once and try again.
                logger.warning("Monetate refused the JWT (401); re-reading the secret once")
                credentials = self._credentials.refresh()
                rotated = True
                continue
            if status == 401:
                raise AuthenticationError(
                    f"Monetate refused the JWT of API user {credentials.username!r} (401) even after "
                    "re-reading the secret: check the username, that its public key is uploaded and "
                    "active, and the clock",
                    status=401,
                    url=self._url,
                )
            if status == 403:
                raise KeyRevokedError(
                    f"Monetate says the key of API user {credentials.username!r} was revoked (403); "
                    "upload a new key and update the secret",
                    status=403,
                    url=self._url,
                )
            if response is None or status == 429 or (status is not None and status >= 500):
                retry_after = parse_retry_after(response.headers.get("Retry-After")) if response else None
                if attempt < self._retry.max_retries:
                    self._sleep(self._retry.delay(attempt, retry_after))
                    attempt += 1
                    continue
                what = failure or f"HTTP {status}"
                message = f"could not mint a Monetate token after {attempt + 1} attempts: {what}"
                if status == 429:
                    raise RateLimitedError(message, retry_after=retry_after, status=429, url=self._url)
                if response is not None and not _is_json(response):
                    kind = response.headers.get("Content-Type", "unknown content type")
                    raise UnexpectedResponseError(f"{message} ({kind})", status=status, url=self._url)
                raise TransientApiError(message, status=status, url=self._url)
            assert response is not None
            return self._accept(response, started)

    def _request(
        self, credentials: Credentials, started: float
    ) -> tuple[requests.Response | None, str | None]:
        jwt = sign_jwt(credentials, started)
        try:
            response = self._session.get(
                self._url, params={"ttl": self.ttl}, auth=_JwtAuth(jwt), timeout=self._timeout
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            return None, type(exc).__name__
        return response, None

    def _accept(self, response: requests.Response, started: float) -> _Token:
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except ValueError:
            body = None
        if status != 200:
            meta = body.get("meta") if isinstance(body, dict) else None
            errors = meta.get("errors") if isinstance(meta, dict) else None
            error_class = BadRequestError if status == 400 else PermanentApiError
            raise error_class(
                f"Monetate's Auth API answered HTTP {status} to a token request (ttl={self.ttl})",
                status=status,
                meta_errors=errors if isinstance(errors, list) else [],
                url=self._url,
            )
        data = body.get("data") if isinstance(body, dict) else None
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            kind = response.headers.get("Content-Type", "unknown content type")
            raise UnexpectedResponseError(
                f"Monetate's Auth API answered HTTP {status} ({kind}) without a token in data.token",
                status=status,
                url=self._url,
            )
        assert isinstance(data, dict)
        expires = [started + self.ttl]
        for key, base in (("expires_at", 0.0), ("expires_in", started)):
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                expires.append(base + float(value))
        expires_at = min(expires)
        self.mints += 1
        logger.info(
            "minted Monetate token",
            extra={"ttl": self.ttl, "expires_in": round(expires_at - started, 1), "mints": self.mints},
        )
        return _Token(value=token, refresh_at=expires_at - self._margin)


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True
