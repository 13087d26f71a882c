"""What one Monetate answer means: its ``data`` and ``meta``, a retry, or a typed error.

One function, :func:`interpret`, reads the answers of the Data API and of the Auth API's token
mint. What differs between the two is a :class:`Dialect` (the difference table): which statuses
are a success, the sentence and error class of each refusal, and which refusals need Monetate's
JSON envelope to be believed (a proxy's HTML page is not Monetate speaking).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any

import requests

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
from monetate_ingest.monetate.retry import parse_retry_after

_TAGS = re.compile(r"<[^>]*>")
#: A 2xx answer to a data POST longer than this is not parsed whole. Its ``data`` only echoes the
#: rows sent (the reference's example response), and parsing a body-sized JSON document per POST
#: under the GIL costs as much as encoding it did; so only the envelope's leading ``meta`` is read.
ECHO_PARSE_LIMIT = 16 * 1024
#: How much of such an answer is decoded to find its ``meta`` (a longer meta: parsed whole).
_ECHO_META_CHARS = 8 * 1024
_META_HEAD = re.compile(rb'[ \t\r\n]*\{[ \t\r\n]*"meta"[ \t\r\n]*:[ \t\r\n]*')
_raw_decode = json.JSONDecoder().raw_decode


@dataclass(frozen=True)
class Retry:
    """A retryable outcome: the error to raise when attempts run out, and the server's hint."""

    error: TransientApiError
    retry_after: float | None = None


Outcome = Retry | tuple[Any, Any]
"""``(data, meta)`` of a success, or a :class:`Retry`; refusals are raised."""


@dataclass(frozen=True)
class Dialect:
    """How one API's refusals read. ``reasons`` map a status to its error class and sentence
    (``str.format``-ed with ``status`` and the caller's context); any other status is ``other``."""

    reasons: Mapping[int, tuple[type[MonetateApiError], str]]
    other: str = "Monetate answered HTTP {status}"
    #: The success statuses; None: any 2xx.
    success: frozenset[int] | None = None
    #: A refusal with this status and no JSON envelope is an :class:`UnexpectedResponseError`.
    needs_envelope: Callable[[int], bool] = field(default=lambda status: False)


DATA_API = Dialect(
    reasons={
        400: (BadRequestError, "Monetate refused the request (400)"),
        401: (
            AuthenticationError,
            "Monetate answered 401 even to a freshly minted token: check that this API user may use "
            "the retailer and environment in the path (MONETATE_RETAILER, MONETATE_ENVIRONMENT) and "
            "that no proxy strips the Authorization header; the call was not retried",
        ),
        403: (KeyRevokedError, "Monetate answered 403: the API user's key was revoked"),
        404: (NotFoundError, "not found (404)"),
    },
    other="Monetate answered HTTP {status} {phrase}: it will not succeed as sent, so it was not retried",
    # Any other 4xx is Monetate's (or a proxy's) final word whatever its body; a 400 needs the
    # envelope to be read as a refusal of the rows (its meta.errors), and so does anything else.
    needs_envelope=lambda status: status == 400 or not 400 <= status < 500,
)
"""The Data API (``/api/data/v1/…``)."""

DATA_API_ONCE = replace(
    DATA_API,
    reasons={
        **DATA_API.reasons,
        401: (
            AuthenticationError,
            "Monetate refused the token (401); it was dropped and the next call mints a new one "
            "(this call is never sent twice)",
        ),
    },
)
"""The Data API for a call sent at most once (the single-record GET): a 401 is not re-sent."""

AUTH_API = Dialect(
    reasons={
        400: (BadRequestError, "Monetate's Auth API answered HTTP 400 to a token request (ttl={ttl})"),
        401: (
            AuthenticationError,
            "Monetate refused the JWT of API user {username!r} (401) even after re-reading the secret: "
            "check the username, that its public key is uploaded and active, and the clock",
        ),
        403: (
            KeyRevokedError,
            "Monetate says the key of API user {username!r} was revoked (403); "
            "upload a new key and update the secret",
        ),
    },
    other="Monetate's Auth API answered HTTP {status} to a token request (ttl={ttl})",
    success=frozenset({200}),
)
"""The Auth API's token mint (``GET /api/auth/v0/refresh/``); ``context``: ``username``, ``ttl``."""


def interpret(
    where: str,
    response: requests.Response,
    *,
    dialect: Dialect = DATA_API,
    echo: bool = False,
    context: Mapping[str, Any] | None = None,
) -> Outcome:
    """Map one response to ``(data, meta)``, a :class:`Retry` (429, 5xx), or raise a refusal.

    ``where`` ("METHOD /path") starts every message. ``echo``: the success answer's ``data``
    echoes the request; a long one is not parsed (``data`` is None).
    """
    status, url = response.status_code, response.url
    ok = 200 <= status < 300 if dialect.success is None else status in dialect.success
    if echo and ok:
        meta = _echo_meta(response)
        if meta is not None:
            return None, meta[0]
    body, is_json = _json(response)
    meta = body.get("meta") if isinstance(body, dict) else None
    errors = meta.get("errors") if isinstance(meta, dict) else None
    meta_errors: list[Any] = errors if isinstance(errors, list) else []
    if ok:
        if not is_json or not isinstance(body, dict):
            raise unexpected(where, response)
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
        return Retry(error, retry_after)
    if status >= 500:
        transient = (
            unexpected(where, response)
            if not is_json
            else TransientApiError(
                f"{where}: Monetate answered HTTP {status}{_summary(meta_errors)}",
                status=status,
                meta_errors=meta_errors,
                url=url,
            )
        )
        return Retry(transient, parse_retry_after(response.headers.get("Retry-After")))
    if not is_json and dialect.needs_envelope(status):
        raise unexpected(where, response)
    error_class, reason = dialect.reasons.get(status, (PermanentApiError, dialect.other))
    sentence = reason.format(status=status, phrase=_phrase(status), **(context or {}))
    detail = _summary(meta_errors) if is_json else _excerpt(response)
    raise error_class(f"{where}: {sentence}{detail}", status=status, meta_errors=meta_errors, url=url)


def unexpected(where: str, response: requests.Response) -> UnexpectedResponseError:
    """The answer was not Monetate's JSON envelope: name its status, type and a tag-free excerpt."""
    return UnexpectedResponseError(
        f"{where}: expected Monetate's JSON envelope, got HTTP {response.status_code}{_excerpt(response)}",
        status=response.status_code,
        url=response.url,
    )


def _excerpt(response: requests.Response) -> str:
    """`` (content type): first words of the body``, tags removed, at most 200 characters."""
    kind = response.headers.get("Content-Type", "no content type")
    excerpt = " ".join(_TAGS.sub(" ", response.text[:2000]).split())[:200]
    return f" ({kind})" + (f": {excerpt}" if excerpt else "")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


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


def _summary(meta_errors: list[Any]) -> str:
    if not meta_errors:
        return ""
    shown = "; ".join(_short(e) for e in meta_errors[:3])
    more = f" (+{len(meta_errors) - 3} more)" if len(meta_errors) > 3 else ""
    return f": {shown}{more}"


def _short(error: Any) -> str:
    text = error if isinstance(error, str) else json.dumps(error, default=str, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."
