"""``requests`` token authentication for the Data API, with one re-mint on 401.

403 is raised here, as :class:`KeyRevokedError`, from the response hook: for the first response
and for the one re-sent after a 401. The client never retries it.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from monetate_ingest.monetate.exceptions import KeyRevokedError
from monetate_ingest.observability import logger

_PREFIX = "Token "


class TokenSource(Protocol):
    """What :class:`TokenAuth` needs from :class:`~monetate_ingest.monetate.tokens.TokenProvider`."""

    def token(self, deadline: float | None = None) -> str: ...

    def invalidate(self, token: str) -> None: ...


class TokenAuth(AuthBase):
    """Sets ``Authorization: Token <token>``; on 401 invalidates it, mints once and re-sends.

    A second 401 is returned as is (the client maps it to ``AuthenticationError``). With
    ``resend=False`` (:meth:`without_resend`) a 401 only drops the token: used for the
    single-record GET, which must never reach Monetate twice within a second.
    """

    def __init__(self, tokens: TokenSource, *, resend: bool = True, deadline: float | None = None) -> None:
        self.tokens = tokens
        self.resend = resend
        self.deadline = deadline

    def without_resend(self) -> TokenAuth:
        """The same tokens, but a 401 is answered as is after dropping the token."""
        return TokenAuth(self.tokens, resend=False, deadline=self.deadline)

    def until(self, deadline: float) -> TokenAuth:
        """The same tokens for one call: a token minted on its way keeps to ``deadline``
        (a ``time.monotonic()`` instant)."""
        return TokenAuth(self.tokens, resend=self.resend, deadline=deadline)

    def authorization(self) -> str:
        """The ``Authorization`` header value for the current token (minted if needed)."""
        if self.deadline is None:
            return _PREFIX + self.tokens.token()
        return _PREFIX + self.tokens.token(deadline=self.deadline)

    def refused(self, authorization: str) -> bool:
        """Monetate answered 401 to ``authorization``: drop its token; True if the request
        should be sent once more (with :meth:`authorization` minted afresh)."""
        self.tokens.invalidate(authorization.removeprefix(_PREFIX))
        if self.resend:
            logger.info("Monetate answered 401; minting a new token and re-sending once")
        return self.resend

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = self.authorization()
        r.hooks.setdefault("response", []).append(self._on_response)
        return r

    def _on_response(self, r: requests.Response, **kwargs: Any) -> requests.Response:
        if r.status_code == 403:
            _revoked(r)
        if r.status_code != 401 or not self.refused(str(r.request.headers.get("Authorization", ""))):
            return r
        # Consume and release the connection so the re-sent request can reuse it.
        _ = r.content
        r.close()
        prep = r.request.copy()
        prep.headers["Authorization"] = self.authorization()
        resent = r.connection.send(prep, **kwargs)
        resent.history.append(r)
        resent.request = prep
        if resent.status_code == 403:
            _revoked(resent)
        return resent


def revoked_error(method: str, url: str) -> KeyRevokedError:
    """What a 403 from Monetate raises: the key was revoked; nothing is retried."""
    return KeyRevokedError(
        f"Monetate answered 403 to {method} {_path(url)}: the API user's key was revoked. "
        "Upload a new public key, update the secret, and redeploy; nothing is retried.",
        status=403,
        url=url,
    )


def _revoked(r: requests.Response) -> None:
    _ = r.content
    r.close()
    raise revoked_error(str(r.request.method), str(r.url))


def _path(url: str) -> str:
    return urlsplit(url).path or "/"
