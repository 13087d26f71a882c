"""The bulk data POST straight through the session's own urllib3 pool, without requests' per-call work.

Why not ``Session.request``: for a 500-row POST on loopback it costs about 0.7 ms of CPU under
the GIL (request preparation, URL re-quoting, cookies, hooks, redirect checks, the answer read in
10 KB pieces; 1.0-1.2 ms when requests also re-reads the proxy environment), this path about
0.35 ms (``bench/bench_client.py``, "client CPU per 500-row POST").
IngestFile parses, coerces and encodes rows on the same interpreter, so the difference is
throughput. Everything that matters is kept: the pool and TLS settings requests chose for the
origin (connections shared with the other calls), the session's headers, ``TokenAuth``'s token,
its one re-mint and re-send on 401 and :class:`KeyRevokedError` on 403, the connect/read
timeouts, and a ``requests.Response`` for the client to interpret. Network errors are raised as
requests' own exceptions. An origin reached through a proxy is left to requests
(:meth:`DirectPost.usable_for` is False).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers, select_proxy
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError

from monetate_ingest.monetate.auth import TokenAuth, revoked_error


class DirectPost:
    """``post(url, body, headers)`` → ``requests.Response``, for origins :meth:`usable_for` accepts."""

    def __init__(self, session: requests.Session, auth: TokenAuth, timeout: tuple[float, float]) -> None:
        self.session = session
        self.auth = auth
        self.timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._timeouts = timeout
        self._pools: dict[tuple[str, str], Any] = {}  # (scheme, host) → urllib3 pool, or None

    def usable_for(self, url: str) -> bool:
        return self._pool(url) is not None

    def _pool(self, url: str) -> Any:
        origin = urlsplit(url)[:2]
        try:
            return self._pools[origin]
        except KeyError:
            pass
        session = self.session
        adapter = session.get_adapter(url)
        settings = session.merge_environment_settings(url, {}, None, session.verify, session.cert)
        pool = None
        if isinstance(adapter, HTTPAdapter) and not select_proxy(url, settings["proxies"]):
            probe = requests.Request("POST", url).prepare()  # the pool and TLS setup HTTPAdapter.send uses
            pool = adapter.get_connection_with_tls_context(probe, settings["verify"], None, settings["cert"])
            adapter.cert_verify(pool, url, settings["verify"], settings["cert"])  # type: ignore[no-untyped-call]
        self._pools[origin] = pool
        return pool

    def post(
        self,
        url: str,
        body: bytes,
        headers: dict[str, str],
        *,
        auth: TokenAuth | None = None,
        read_timeout: float | None = None,
    ) -> requests.Response:
        """One POST (twice after a 401, as :class:`TokenAuth` does); 403: :class:`KeyRevokedError`.

        ``auth``: instead of the one given at construction (the same tokens, bound to a deadline);
        ``read_timeout``: a cap on the read timeout for this POST.
        """
        auth = auth or self.auth
        timeout = self.timeout
        if read_timeout is not None and read_timeout < self._timeouts[1]:
            timeout = urllib3.Timeout(connect=self._timeouts[0], read=read_timeout)
        merged = {**self.session.headers, **headers}
        authorization = merged["Authorization"] = auth.authorization()
        response = self._send(url, body, merged, timeout)
        if response.status_code == 401 and auth.refused(authorization):
            merged["Authorization"] = auth.authorization()
            response = self._send(url, body, merged, timeout)
        if response.status_code == 403:
            raise revoked_error("POST", url)
        return response

    def _send(
        self, url: str, body: bytes, headers: dict[str, Any], timeout: urllib3.Timeout
    ) -> requests.Response:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            answer = self._pool(url).urlopen(
                "POST",
                target,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
                decode_content=True,
                timeout=timeout,
            )
        except ReadTimeoutError as exc:
            raise requests.ReadTimeout(exc) from exc
        except Urllib3Error as exc:  # refused, reset, TLS, connect timeout: as requests would say
            self._pools.pop(parts[:2], None)  # a closed pool is looked up afresh
            if "timed out" in str(exc).lower():
                raise requests.ConnectTimeout(exc) from exc
            raise requests.ConnectionError(exc) from exc
        response = requests.Response()
        response.status_code = answer.status
        response.reason = answer.reason or ""
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response._content = answer.data
        response.url = url
        return response
