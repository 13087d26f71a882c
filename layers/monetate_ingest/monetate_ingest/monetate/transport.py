"""How every Monetate call travels: the pooled session, and the one retry loop.

Both the Data API client and the token mint run their attempts through :class:`RetryLoop`; what an
answer means is :mod:`monetate_ingest.monetate.responses`' business, and the data POST's lean path
is :mod:`monetate_ingest.monetate.direct_post`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from monetate_ingest import __version__
from monetate_ingest.monetate.auth import TokenAuth
from monetate_ingest.monetate.direct_post import DirectPost
from monetate_ingest.monetate.exceptions import DeadlineExceededError, RateLimitedError, TransientApiError
from monetate_ingest.monetate.responses import DATA_API, DATA_API_ONCE, Outcome, Retry, interpret
from monetate_ingest.monetate.retry import RetryPolicy
from monetate_ingest.observability import logger

T = TypeVar("T")

#: With a deadline, a request's read timeout is the time left, but never less than this (seconds).
READ_TIMEOUT_FLOOR = 0.5
#: What a request may raise instead of answering: worth another attempt.
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class EnvironmentOnceSession(requests.Session):
    """A ``Session`` that reads the proxy and CA-bundle environment once per origin.

    ``requests`` reads it again for every request (``merge_environment_settings`` walks the whole
    of ``os.environ`` twice, through ``urllib.request.getproxies``): 0.3 to 0.7 ms of CPU per call,
    under the GIL, as much as the rest of a 500-row POST. A Lambda's environment does not change
    while it runs, so each origin's answer is kept; a call that passes its own ``proxies`` is not
    cached. Changing ``session.proxies``/``verify``/``cert`` afterwards needs :meth:`forget_environment`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment: dict[tuple[Any, ...], Any] = {}

    def forget_environment(self) -> None:
        self._environment.clear()

    def merge_environment_settings(  # type: ignore[override]
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        if proxies:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        try:
            key = (*urlsplit(url)[:2], stream, verify, cert)
            found = self._environment.get(key)
        except TypeError:  # an unhashable verify/cert: no caching
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if found is None:
            found = self._environment[key] = super().merge_environment_settings(url, {}, stream, verify, cert)
        return {**found, "proxies": dict(found["proxies"])}


def new_session(pool_size: int = 16) -> requests.Session:
    """A ``Session`` with a connection pool of at least 16 per host and no urllib3 retries.

    It reads the proxy/CA environment once per origin (:class:`EnvironmentOnceSession`).
    """
    session = EnvironmentOnceSession()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=max(16, pool_size), max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"monetate-ingest/{__version__} {requests.utils.default_user_agent()}"
    return session


def network_failure(where: str, exc: BaseException, url: str | None = None) -> Retry:
    """A request that raised instead of answering (refused, reset, timed out): retry it."""
    return Retry(TransientApiError(f"{where} failed: {type(exc).__name__}", url=url))


class RetryLoop:
    """Runs one call's attempts: capped full-jitter back-off, ``Retry-After`` honoured.

    Hand-written, not urllib3's ``Retry``: urllib3 sleeps inside the adapter with ``time.sleep`` (no
    injected sleep, so no test without real waiting), has no per-call policy (the single-record GET
    is never retried, the mint has its own budget) and only additive jitter, not full jitter.

    ``count(name)`` is told of every ``"requests"`` sent, ``"retries"`` and ``"throttled"`` (a 429
    retried; callers adapt their concurrency to it).
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        sleep: Callable[[float], None] = time.sleep,
        count: Callable[[str], None] | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._sleep = sleep
        self._count = count or _ignore
        self._now = now

    def run(
        self,
        attempt: Callable[[float | None], T | Retry],
        *,
        where: str,
        retry: bool = True,
        deadline: float | None = None,
    ) -> T:
        """``attempt(read_cap)`` until it returns a result (returned), raises, or retries run out
        (its last :class:`Retry` error is raised, saying how many attempts were made).

        ``deadline`` (a ``time.monotonic()`` instant; None: none): no attempt starts after it, no
        retry sleeps past it (:class:`DeadlineExceededError` instead), and ``read_cap`` is the time
        left (at least ``READ_TIMEOUT_FLOOR``) for the attempt to cap its read timeout with.
        """
        attempts = 1 + (self.policy.max_retries if retry else 0)
        made = 0
        error: TransientApiError | None = None
        while True:
            read_cap: float | None = None
            if deadline is not None:
                left = deadline - self._now()
                if left <= 0:
                    raise _out_of_time(where, made, "no time was left to send", error)
                read_cap = max(READ_TIMEOUT_FLOOR, left)
            self._count("requests")
            outcome = attempt(read_cap)
            made += 1
            if not isinstance(outcome, Retry):
                return outcome
            error = outcome.error
            if isinstance(error, DeadlineExceededError):  # a call inside this one (the token mint)
                raise _out_of_time(where, made, "a call it depends on ran out of time", error)
            if made >= attempts:
                if attempts > 1:
                    error.message = f"{error.message} (after {attempts} attempts)"
                    error.args = (error.message,)
                raise error
            delay = self.policy.delay(made - 1, outcome.retry_after)
            if deadline is not None and self._now() + delay > deadline:
                why = f"the next retry, {delay:.2f}s away, would end past it"
                raise _out_of_time(where, made, why, error)
            logger.warning(
                "retrying monetate call",
                extra={"call": where, "reason": error.message, "attempt": made, "delay": round(delay, 3)},
            )
            self._count("retries")
            if isinstance(error, RateLimitedError):
                self._count("throttled")
            self._sleep(delay)


def _out_of_time(where: str, made: int, why: str, last: TransientApiError | None) -> DeadlineExceededError:
    tried = f"{made} attempt{'' if made == 1 else 's'}"
    cause = f" (last: {last.message})" if last is not None else ""
    error = DeadlineExceededError(
        f"{where}: stopped after {tried} to keep within the deadline: {why}{cause}; "
        "the rows are left for the next invocation",
        status=last.status if last is not None else None,
        meta_errors=last.meta_errors if last is not None else None,
        url=last.url if last is not None else None,
    )
    error.__cause__ = last
    return error


def capped(timeout: tuple[float, float], read_cap: float | None) -> tuple[float, float]:
    """``(connect, read)`` with the read timeout no longer than ``read_cap`` (None: as is)."""
    if read_cap is None or read_cap >= timeout[1]:
        return timeout
    return timeout[0], read_cap


def _ignore(name: str) -> None:
    """No counting (the token mint keeps none)."""


class DataTransport:
    """The Data API calls of one client: headers, auth, timeouts, the direct POST, retries, stats.

    ``stats`` counts requests sent, retries and 429s retried (``throttled``).
    """

    def __init__(
        self,
        session: requests.Session,
        auth: requests.auth.AuthBase,
        *,
        timeout: tuple[float, float],
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.auth = auth
        self.timeout = timeout
        #: For calls that must reach Monetate at most once (the single-record GET): no 401 resend.
        self.auth_once: requests.auth.AuthBase = getattr(auth, "without_resend", lambda: auth)()
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0}
        self._stats_lock = threading.Lock()
        self.loop = RetryLoop(policy, sleep=sleep, count=self._count, now=now)
        #: The data POST's lean path (see :mod:`monetate_ingest.monetate.direct_post`); None: requests only.
        self.direct: DirectPost | None = (
            DirectPost(session, auth, timeout) if isinstance(auth, TokenAuth) else None
        )

    def call(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        retry: bool = True,
        echo: bool = False,
        deadline: float | None = None,
    ) -> tuple[Any, Any]:
        """``(data, meta)`` of one call, retried unless ``retry`` is False (then sent at most once,
        without the 401 re-send); ``echo``: a data POST whose long success answer is not parsed;
        ``deadline``: see :meth:`RetryLoop.run` (a token minted on the way keeps to it too)."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        where = f"{method} {_path(url)}"
        direct = self.direct if echo and body is not None and not params else None
        if direct is not None and not direct.usable_for(url):
            direct = None
        auth = self.auth if retry else self.auth_once
        if deadline is not None and isinstance(auth, TokenAuth):
            auth = auth.until(deadline)
        direct_auth = auth if isinstance(auth, TokenAuth) else None
        dialect = DATA_API if retry else DATA_API_ONCE
        attempt_number = 0

        def attempt(read_cap: float | None) -> Outcome:
            nonlocal attempt_number
            attempt_number += 1
            started = time.monotonic()
            try:
                if direct is not None:
                    response = direct.post(url, body, headers, auth=direct_auth, read_timeout=read_cap)  # type: ignore[arg-type]
                else:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=body,
                        headers=headers,
                        auth=auth,
                        timeout=capped(self.timeout, read_cap),
                    )
            except NETWORK_ERRORS as exc:
                return network_failure(where, exc, url)
            except TransientApiError as exc:  # the auth could not mint a token: same budget as a 5xx
                return Retry(exc)
            logger.debug(
                "monetate call",
                extra={
                    "method": method,
                    "path": _path(url),
                    "status": response.status_code,
                    "attempt": attempt_number,
                    "ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return interpret(where, response, dialect=dialect, echo=echo)

        return self.loop.run(attempt, where=where, retry=retry, deadline=deadline)

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1


def _path(url: str) -> str:
    return urlsplit(url).path or "/"
