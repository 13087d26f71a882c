"""The Monetate Data API client: one pooled session, timeouts, jittered retries, typed errors."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from monetate_ingest import __version__
from monetate_ingest.monetate.auth import TokenAuth
from monetate_ingest.monetate.direct_post import DirectPost
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    BadRequestError,
    KeyRevokedError,
    MonetateApiError,
    NotFoundError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
    UnexpectedResponseError,
)
from monetate_ingest.monetate.retry import RetryPolicy, parse_retry_after
from monetate_ingest.observability import logger

if TYPE_CHECKING:
    from monetate_ingest.monetate.credentials import SecretCredentials
    from monetate_ingest.monetate.tokens import TokenProvider

_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
_TAGS = re.compile(r"<[^>]*>")
_MAX_PAGES = 1000
#: A 2xx answer to a data POST longer than this is not parsed whole. Its ``data`` only echoes the
#: rows sent (the reference's example response), and parsing a body-sized JSON document per POST
#: under the GIL costs as much as encoding it did; so only the envelope's leading ``meta`` is read.
ECHO_PARSE_LIMIT = 16 * 1024
#: How much of such an answer is decoded to find its ``meta`` (a longer meta: parsed whole).
_ECHO_META_CHARS = 8 * 1024
_META_HEAD = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"meta"[ \t\r\n]*:[ \t\r\n]*')
_raw_decode = json.JSONDecoder().raw_decode


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


@dataclass
class _Retry:
    """A retryable outcome: the error to raise when attempts run out, and the server's hint."""

    error: TransientApiError
    retry_after: float | None = None


class MonetateClient:
    """Calls the Data API under ``data_api_base`` (``{api}/api/data/v1/{retailer}/{environment}``).

    Retries 429, 5xx, timeouts and connection errors with capped full-jitter backoff (``Retry-After``
    honoured, capped at ``backoff_cap``), except :meth:`get_record`. ``stats`` counts requests sent
    and retries. ``tokens``/``credentials`` are set by :func:`monetate_ingest.monetate.factory.build_client`.
    """

    tokens: TokenProvider | None = None
    credentials: SecretCredentials | None = None

    def __init__(
        self,
        *,
        data_api_base: str,
        auth: requests.auth.AuthBase,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 30.0),
        max_retries: int = 4,
        backoff_base: float = 0.2,
        backoff_cap: float = 20.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = data_api_base.rstrip("/")
        self.auth = auth
        self.session = session if session is not None else new_session()
        self.timeout = timeout
        self.policy = RetryPolicy(max_retries=max_retries, base=backoff_base, cap=backoff_cap)
        self._sleep = sleep
        self._stats_lock = threading.Lock()
        #: For calls that must reach Monetate at most once (the single-record GET): no 401 resend.
        self._auth_once: requests.auth.AuthBase = getattr(auth, "without_resend", lambda: auth)()
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "throttled": 0}
        #: The data POST's lean path (see :mod:`monetate_ingest.monetate.direct_post`); None: requests only.
        self.direct: DirectPost | None = (
            DirectPost(self.session, auth, timeout) if isinstance(auth, TokenAuth) else None
        )

    # --- endpoints ---------------------------------------------------------------------------

    def list_schemas(self) -> list[dict[str, Any]]:
        """Active schemas (``GET /schema/``), following ``meta.next`` pages."""
        return self._list("/schema/")

    def get_schema(self, name: str) -> dict[str, Any]:
        """One schema's definition; :class:`NotFoundError` when it does not exist."""
        return self._dict(self._call("GET", f"/schema/{_q(name)}/"))

    def create_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``POST /schema/``; returns the created schema."""
        return self._dict(self._call("POST", "/schema/", body=_encode(schema)))

    def add_fields(self, name: str, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``PATCH /schema/{name}/`` adding ``fields``; returns Monetate's answer."""
        return self._dict(self._call("PATCH", f"/schema/{_q(name)}/", body=_encode({"fields": fields})))

    def list_schema_types(self) -> list[dict[str, Any]]:
        """``GET /schematype/``."""
        return self._list("/schematype/")

    def post_rows(self, schema: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """``POST /data/{schema}/`` with ``{"schema_rows": rows}``."""
        return self.post_body(schema, _encode({"schema_rows": rows}))

    def post_body(self, schema: str, body: bytes) -> dict[str, Any]:
        """``POST /data/{schema}/`` with a pre-encoded ``{"schema_rows": [...]}`` JSON body.

        Returns Monetate's ``data``, except that a success answer over ``ECHO_PARSE_LIMIT`` bytes
        (``data`` echoing the rows) gives ``{}``: only its ``meta`` is parsed. A non-JSON answer is
        still an :class:`UnexpectedResponseError`, and errors are interpreted as for any call.
        """
        return self._dict(self._call("POST", f"/data/{_q(schema)}/", body=body, echo=True))

    def get_record(self, schema: str, record_id: str) -> list[dict[str, Any]]:
        """``GET /data/{schema}/?id=…`` once, never retried (Monetate allows 1 per second).

        Returns the rows Monetate matched: its ``data`` is ``{"schema_rows": [<record>, ...]}``
        (the reference's ``example_schemaData``), possibly empty. Any other shape is an
        :class:`UnexpectedResponseError`, never passed on as if it were a record.
        """
        path = f"/data/{_q(schema)}/"
        data = self._call("GET", path, params={"id": record_id}, retry=False)
        rows = data.get("schema_rows") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise UnexpectedResponseError(
                f"GET {_path(self.base + path)}: expected data {{\"schema_rows\": [<record>, ...]}}",
                url=self.base + path,
            )
        return rows

    def upload_history(self, schema: str) -> list[dict[str, Any]]:
        """``GET /upload/{schema}/``, most recent first."""
        return self._list(f"/upload/{_q(schema)}/")

    # --- transport ---------------------------------------------------------------------------

    def _list(self, path: str) -> list[dict[str, Any]]:
        """Every item of a list endpoint: ``meta.next`` followed as given until there is none.

        Never a silently partial list: a ``next`` to another origin (the token would go there),
        one already fetched (a loop) or more than ``_MAX_PAGES`` pages raise
        :class:`UnexpectedResponseError`.
        """
        items: list[dict[str, Any]] = []
        url: str | None = self.base + path
        seen: set[str] = set()
        while url is not None:
            if len(seen) >= _MAX_PAGES:
                raise UnexpectedResponseError(f"GET {_path(url)}: more than {_MAX_PAGES} pages", url=url)
            seen.add(url)
            data, meta = self._call_with_meta("GET", url)
            if not isinstance(data, list):
                raise UnexpectedResponseError(f"GET {_path(url)}: expected a list in data", url=url)
            items.extend(data)
            url = self._next_page(url, meta, seen)
        return items

    def _next_page(self, url: str, meta: Any, seen: set[str]) -> str | None:
        nxt = meta.get("next") if isinstance(meta, dict) else None
        if nxt is None or nxt == "":
            return None
        target = urljoin(url, nxt) if isinstance(nxt, str) else None
        if target is None:
            why = "not a URL"
        elif urlsplit(target)[:2] != urlsplit(self.base)[:2]:
            why = "on another origin"
        elif target in seen:
            why = "a page already read"
        else:
            return target
        message = f"GET {_path(url)}: meta.next is {why}; the list is incomplete"
        raise UnexpectedResponseError(message, url=url)

    @staticmethod
    def _dict(data: Any) -> dict[str, Any]:
        if isinstance(data, dict):
            return data
        return {} if data is None else {"data": data}

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        retry: bool = True,
        echo: bool = False,
    ) -> Any:
        return self._call_with_meta(
            method, self.base + path, params=params, body=body, retry=retry, echo=echo
        )[0]

    def _call_with_meta(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
        retry: bool = True,
        echo: bool = False,
    ) -> tuple[Any, Any]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        attempts = 1 + (self.policy.max_retries if retry else 0)
        where = f"{method} {_path(url)}"
        attempt = 0
        direct = self.direct if echo and body is not None and not params else None
        if direct is not None and not direct.usable_for(url):
            direct = None
        # Hand-written, not urllib3 Retry: it has no full jitter, no injected sleep, no per-call policy.
        while True:
            self._count("requests")
            started = time.monotonic()
            outcome: _Retry | tuple[Any, Any]
            try:
                if direct is not None:
                    response = direct.post(url, body, headers)  # type: ignore[arg-type]
                else:
                    response = self.session.request(
                        method,
                        url,
                        params=params,
                        data=body,
                        headers=headers,
                        auth=self.auth if retry else self._auth_once,
                        timeout=self.timeout,
                    )
            except _NETWORK_ERRORS as exc:
                outcome = _Retry(TransientApiError(f"{where} failed: {type(exc).__name__}", url=url))
            except TransientApiError as exc:  # the auth could not mint a token: same budget as a 5xx
                outcome = _Retry(exc)
            else:
                logger.debug(
                    "monetate call",
                    extra={
                        "method": method,
                        "path": _path(url),
                        "status": response.status_code,
                        "attempt": attempt + 1,
                        "ms": round((time.monotonic() - started) * 1000, 1),
                    },
                )
                outcome = _interpret(where, response, echo=echo)
            if not isinstance(outcome, _Retry):
                return outcome
            if attempt + 1 >= attempts:
                error = outcome.error
                if attempts > 1:
                    error.message = f"{error.message} (after {attempts} attempts)"
                    error.args = (error.message,)
                raise error
            delay = self.policy.delay(attempt, outcome.retry_after)
            logger.warning(
                "retrying monetate call",
                extra={
                    "call": where,
                    "reason": outcome.error.message,
                    "attempt": attempt + 1,
                    "delay": round(delay, 3),
                },
            )
            self._count("retries")
            if isinstance(outcome.error, RateLimitedError):
                self._count("throttled")  # callers adapt their concurrency to this
            self._sleep(delay)
            attempt += 1

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1


def _interpret(where: str, response: requests.Response, *, echo: bool = False) -> _Retry | tuple[Any, Any]:
    """Map one response to ``(data, meta)``, a :class:`_Retry`, or raise a permanent error.

    ``echo``: the success answer's ``data`` echoes the request; a long one is not parsed (None).
    """
    status, url = response.status_code, response.url
    if echo and 200 <= status < 300:
        meta = _echo_meta(response)
        if meta is not None:
            return None, meta[0]
    body, is_json = _json(response)
    meta = body.get("meta") if isinstance(body, dict) else None
    errors = meta.get("errors") if isinstance(meta, dict) else None
    meta_errors: list[Any] = errors if isinstance(errors, list) else []
    if 200 <= status < 300:
        if not is_json or not isinstance(body, dict):
            raise _unexpected(where, response)
        return body.get("data"), meta
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        error = RateLimitedError(
            f"{where}: Monetate answered 429 Too Many Requests{hint}",
            retry_after=retry_after,
            status=429,
            meta_errors=meta_errors,
            url=url,
        )
        return _Retry(error, retry_after)
    if status >= 500:
        transient = (
            _unexpected(where, response)
            if not is_json
            else TransientApiError(
                f"{where}: Monetate answered HTTP {status}{_summary(meta_errors)}",
                status=status,
                meta_errors=meta_errors,
                url=url,
            )
        )
        return _Retry(transient, parse_retry_after(response.headers.get("Retry-After")))
    if status == 403:  # normally raised by TokenAuth already; kept for other AuthBase objects
        raise KeyRevokedError(
            f"{where}: Monetate answered 403: the API user's key was revoked", status=403, url=url
        )
    error_class: type[MonetateApiError] = {
        400: BadRequestError,
        401: AuthenticationError,
        404: NotFoundError,
    }.get(status, PermanentApiError)
    reason = {
        400: "Monetate refused the request (400)",
        401: "Monetate answered 401 even with a freshly minted token",
        404: "not found (404)",
    }.get(status, f"Monetate answered HTTP {status}")
    if not is_json and status not in (401, 404):
        raise _unexpected(where, response)
    raise error_class(
        f"{where}: {reason}{_summary(meta_errors)}", status=status, meta_errors=meta_errors, url=url
    )


def _echo_meta(response: requests.Response) -> tuple[Any] | None:
    """``(meta,)`` of a long JSON envelope that starts with its ``meta``, read without parsing the
    rest; None when the answer is short or not so shaped (the caller then parses it whole)."""
    content = response.content
    if len(content) <= ECHO_PARSE_LIMIT or "json" not in response.headers.get("Content-Type", "").lower():
        return None
    head = _META_HEAD.match(content)
    if head is None or content.rstrip()[-1:] != b"}":
        return None
    text = content[:_ECHO_META_CHARS].decode("utf-8", "replace")
    try:
        meta, end = _raw_decode(text, head.end())
    except ValueError:
        return None
    if end >= len(text) or text[end:].lstrip()[:1] not in (",", "}"):
        return None
    return (meta,)


def _json(response: requests.Response) -> tuple[Any, bool]:
    try:
        return response.json(), True
    except ValueError:
        return None, False


def _unexpected(where: str, response: requests.Response) -> UnexpectedResponseError:
    kind = response.headers.get("Content-Type", "no content type")
    excerpt = " ".join(_TAGS.sub(" ", response.text[:2000]).split())[:200]
    return UnexpectedResponseError(
        f"{where}: expected Monetate's JSON envelope, got HTTP {response.status_code} ({kind})"
        + (f": {excerpt}" if excerpt else ""),
        status=response.status_code,
        url=response.url,
    )


def _summary(meta_errors: list[Any]) -> str:
    if not meta_errors:
        return ""
    shown = "; ".join(_short(e) for e in meta_errors[:3])
    more = f" (+{len(meta_errors) - 3} more)" if len(meta_errors) > 3 else ""
    return f": {shown}{more}"


def _short(error: Any) -> str:
    text = error if isinstance(error, str) else json.dumps(error, default=str, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _path(url: str) -> str:
    return urlsplit(url).path or "/"
