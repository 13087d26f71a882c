"""The access-token cache: mint with a signed JWT, reuse until shortly before expiry.

Thread-safe: concurrent callers share one mint (double-checked lock). Tokens and JWTs are never
logged or put in exception messages. The mint's attempts run through the one retry loop
(:class:`~monetate_ingest.monetate.transport.RetryLoop`, its own smaller budget) and its answers
are read by :func:`~monetate_ingest.monetate.responses.interpret` (the Auth API's dialect).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from monetate_ingest.errors import SettingsError
from monetate_ingest.monetate.credentials import Credentials
from monetate_ingest.monetate.exceptions import UnexpectedResponseError
from monetate_ingest.monetate.jwt_signer import sign_jwt
from monetate_ingest.monetate.responses import AUTH_API, Retry, interpret
from monetate_ingest.monetate.retry import RetryPolicy
from monetate_ingest.monetate.transport import NETWORK_ERRORS, RetryLoop, capped, network_failure
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
        monotonic: Callable[[], float] = time.monotonic,
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
        policy = retry or RetryPolicy(max_retries=2, base=0.2, cap=5.0)
        self._loop = RetryLoop(policy, sleep=sleep, now=monotonic)
        self._lock = threading.Lock()
        self._current: _Token | None = None
        self.mints = 0

    def token(self, deadline: float | None = None) -> str:
        """The cached token, or a freshly minted one when it is missing or near expiry.

        ``deadline`` (a ``time.monotonic()`` instant): a mint keeps to it
        (:class:`~monetate_ingest.monetate.exceptions.DeadlineExceededError` otherwise).
        """
        current = self._current
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        with self._lock:
            current = self._current
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            current = self._mint(deadline)
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

    def _mint(self, deadline: float | None) -> _Token:
        credentials = self._credentials.get()
        rotated = False
        where = f"minting a Monetate token (GET {urlsplit(self._url).path or '/'})"

        def attempt(read_cap: float | None) -> _Token | Retry:
            nonlocal credentials, rotated
            started = self._clock()
            timeout = capped(self._timeout, read_cap)
            try:
                response = self._request(credentials, started, timeout)
                if response.status_code == 401 and not rotated:
                    # The key may have been rotated: re-read the secret once and send again at once.
                    logger.warning("Monetate refused the JWT (401); re-reading the secret once")
                    credentials = self._credentials.refresh()
                    rotated = True
                    started = self._clock()
                    response = self._request(credentials, started, timeout)
            except NETWORK_ERRORS as exc:
                return network_failure(where, exc, self._url)
            context = {"username": credentials.username, "ttl": self.ttl}
            outcome = interpret(where, response, dialect=AUTH_API, context=context)
            if isinstance(outcome, Retry):
                return outcome
            return self._accept(outcome[0], response, started)

        return self._loop.run(attempt, where=where, deadline=deadline)

    def _request(
        self, credentials: Credentials, started: float, timeout: tuple[float, float]
    ) -> requests.Response:
        auth = _JwtAuth(sign_jwt(credentials, started))
        return self._session.get(self._url, params={"ttl": self.ttl}, auth=auth, timeout=timeout)

    def _accept(self, data: Any, response: requests.Response, started: float) -> _Token:
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            kind = response.headers.get("Content-Type", "unknown content type")
            raise UnexpectedResponseError(
                f"Monetate's Auth API answered HTTP {response.status_code} ({kind}) "
                "without a token in data.token",
                status=response.status_code,
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
