"""The Monetate Data API client: its endpoints.

How a call travels (session, timeouts, the retry loop, the direct POST) is
:mod:`monetate_ingest.monetate.transport`; what an answer means is
:mod:`monetate_ingest.monetate.responses`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin, urlsplit

import requests

from monetate_ingest.monetate.direct_post import DirectPost
from monetate_ingest.monetate.exceptions import UnexpectedResponseError
from monetate_ingest.monetate.names import check_schema_name
from monetate_ingest.monetate.retry import RetryPolicy
from monetate_ingest.monetate.transport import DataTransport, EnvironmentOnceSession, new_session

if TYPE_CHECKING:
    from monetate_ingest.monetate.credentials import SecretCredentials
    from monetate_ingest.monetate.tokens import TokenProvider

#: ``new_session`` and ``EnvironmentOnceSession`` are transport's, importable from here as before.
__all__ = ["EnvironmentOnceSession", "MonetateClient", "new_session"]

_MAX_PAGES = 1000


class MonetateClient:
    """Calls the Data API under ``data_api_base`` (``{api}/api/data/v1/{retailer}/{environment}``).

    Retries 429, 5xx, timeouts and connection errors with capped full-jitter backoff (``Retry-After``
    honoured, capped at ``backoff_cap``), except :meth:`get_record`. ``stats`` counts requests sent
    and retries. ``tokens``/``credentials`` are set by :func:`monetate_ingest.monetate.factory.build_client`.
    Answers are read by :func:`monetate_ingest.monetate.responses.interpret`.
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = data_api_base.rstrip("/")
        self.transport = DataTransport(
            session if session is not None else new_session(),
            auth,
            timeout=timeout,
            policy=RetryPolicy(max_retries=max_retries, base=backoff_base, cap=backoff_cap),
            sleep=sleep,
            now=monotonic,
        )

    @property
    def session(self) -> requests.Session:
        return self.transport.session

    @property
    def auth(self) -> requests.auth.AuthBase:
        return self.transport.auth

    @property
    def stats(self) -> dict[str, int]:
        """Requests sent, retries, and 429s retried (``throttled``), since the client was made."""
        return self.transport.stats

    @property
    def direct(self) -> DirectPost | None:
        """The data POST's lean path (:mod:`monetate_ingest.monetate.direct_post`); None: requests only."""
        return self.transport.direct

    @direct.setter
    def direct(self, value: DirectPost | None) -> None:
        self.transport.direct = value

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

    def post_body(self, schema: str, body: bytes, *, deadline: float | None = None) -> dict[str, Any]:
        """``POST /data/{schema}/`` with a pre-encoded ``{"schema_rows": [...]}`` JSON body.

        Returns Monetate's ``data``, except that a success answer over ``ECHO_PARSE_LIMIT`` bytes
        (``data`` echoing the rows) gives ``{}``: only its ``meta`` is parsed. A non-JSON answer is
        still an :class:`UnexpectedResponseError`, and errors are interpreted as for any call.

        ``deadline``: a ``time.monotonic()`` instant (None: none). No retry sleeps past it and no
        attempt starts after it (:class:`DeadlineExceededError`: the rows were not stored, or not
        known to be; leave them for the next invocation); each read timeout is capped at the time
        left, but not below ``transport.READ_TIMEOUT_FLOOR``.
        """
        path = f"/data/{_q(schema)}/"
        return self._dict(self._call("POST", path, body=body, echo=True, deadline=deadline))

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
                f'GET {_path(self.base + path)}: expected data {{"schema_rows": [<record>, ...]}}',
                url=self.base + path,
            )
        return rows

    def upload_history(self, schema: str) -> list[dict[str, Any]]:
        """``GET /upload/{schema}/``, most recent first."""
        return self._list(f"/upload/{_q(schema)}/")

    # --- calls -------------------------------------------------------------------------------

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
        deadline: float | None = None,
    ) -> Any:
        return self._call_with_meta(
            method, self.base + path, params=params, body=body, retry=retry, echo=echo, deadline=deadline
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
        deadline: float | None = None,
    ) -> tuple[Any, Any]:
        return self.transport.call(
            method, url, params=params, body=body, retry=retry, echo=echo, deadline=deadline
        )


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def _q(schema: str) -> str:
    """A schema name as one path segment: checked first (:func:`check_schema_name`, so an invalid
    name raises before any request), then percent-encoded whole, so no name becomes another path."""
    return quote(check_schema_name(schema), safe="")


def _path(url: str) -> str:
    return urlsplit(url).path or "/"
