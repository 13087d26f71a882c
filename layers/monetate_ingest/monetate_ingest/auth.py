"""``requests`` token authentication for the Data API, with one re-mint on 401.

403 is raised here, as :class:`KeyRevokedError`, from the response hook: for the first response
and for the one re-sent after a 401. The client never retries it.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from .errors import KeyRevokedError
from .observability import logger

_PREFIX = "Token "


class TokenSource(Protocol):
    """What :class:`TokenAuth` needs from :class:`~monetate_ingest.tokens.TokenProvider`."""

    def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class TokenAuth(AuthBase):
    """Sets ``Authorization: Token <token>``; on 401 invalidates it, mints once and re-sends.

    A second 401 is returned as is (the client maps it to ``AuthenticationError``). With
    ``resend=False`` (:meth:`without_resend`) a 401 only drops the token: used for the
    single-record GET, which must never reach Monetate twice within a second.
    """

    def __init__(self, tokens: TokenSource, *, resend: bool = True) -> None:
        self.tokens = tokens
        self.resend = resend

    def without_resend(self) -> TokenAuth:
        """The same tokens, but a 401 is answered as is after dropping the token."""
        return TokenAuth(self.tokens, resend=False)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = _PREFIX + self.tokens.token()
        r.hooks.setdefault("response", []).append(self._on_response)
        return r

    def _on_response(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r.status_code == 403:
            _revoked(r)
        if r.status_code != 401:
            return r
        sent = str(r.request.headers.get("Authorization", ""))
        self.tokens.invalidate(sent.removeprefix(_PREFIX))
        if not self.resend:
            return r
        logger.info("Monetate answered 401; minting a new token and re-sending once")
        # Consume and release the connection so the re-sent request can reuse it.
        _ = r.content
        r.close()
        prep = r.request.copy()
        prep.headers["Authorization"] = _PREFIX + self.tokens.token()
        resent = r.connection.send(prep, **kwargs)
        resent.history.append(r)
        resent.request = prep
        if resent.status_code == 403:
            _revoked(resent)
        return resent


def _revoked(r: requests.Response) -> None:
    _ = r.content
    r.close()
    raise KeyRevokedError(
        f"Monetate answered 403 to {r.request.method} {_path(r.url)}: the API user's key was revoked. "
        "Upload a new public key, update the secret, and redeploy; nothing is retried.",
        status=403,
        url=r.url,
    )


def _path(url: str) -> str:
    return urlsplit(url).path or "/"
