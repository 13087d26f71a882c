"""Wire secret → JWT → token → client from :class:`MonetateSettings`; one shared client per container."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from monetate_ingest.monetate.auth import TokenAuth
from monetate_ingest.monetate.client import MonetateClient, new_session
from monetate_ingest.monetate.credentials import SecretCredentials
from monetate_ingest.monetate.tokens import TokenProvider
from monetate_ingest.once import OncePerKey
from monetate_ingest.settings import MonetateSettings

_shared: OncePerKey[tuple[MonetateSettings, int], MonetateClient] = OncePerKey(
    lambda key: build_client(key[0], pool_size=key[1])
)


def build_client(
    settings: MonetateSettings,
    *,
    pool_size: int = 16,
    session: requests.Session | None = None,
    secrets_fetch: Callable[..., str | bytes] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> MonetateClient:
    """A new client; ``client.tokens`` and ``client.credentials`` expose mint and read counts."""
    if session is None:
        session = new_session(pool_size=pool_size)
    timeout = (settings.http_connect_timeout, settings.http_read_timeout)
    credentials = SecretCredentials(settings.secret_id, max_age=settings.secret_max_age, fetch=secrets_fetch)
    tokens = TokenProvider(
        credentials,
        settings.auth_refresh_url,
        ttl=settings.token_ttl,
        session=session,
        clock=clock,
        timeout=timeout,
        sleep=sleep,
    )
    client = MonetateClient(
        data_api_base=settings.data_api_base,
        auth=TokenAuth(tokens),
        session=session,
        timeout=timeout,
        max_retries=settings.http_max_retries,
        sleep=sleep,
    )
    client.tokens = tokens
    client.credentials = credentials
    return client


def shared_client(settings: MonetateSettings, *, pool_size: int = 16) -> MonetateClient:
    """The container's client for ``settings``, built lazily once (thread-safe).

    ``pool_size``: connections kept to Monetate (IngestFile asks for twice its concurrency).
    """
    return _shared.get((settings, pool_size))
