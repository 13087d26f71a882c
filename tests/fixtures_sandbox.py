"""Sandbox fixtures: a Monetate sandbox on loopback with the test key registered, and clients
built by the real factory against it (secret from a fake fetch, waits recorded, not slept)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.factory import build_client
from monetate_ingest.settings import MonetateSettings

from local.sandbox import MonetateSandbox

USERNAME = "api-123-example"


@pytest.fixture
def sandbox(key_pair: Any) -> Iterator[MonetateSandbox]:
    """A started sandbox for retailer ``acme`` that knows the test user's public key."""
    with MonetateSandbox(retailer="acme", environment="production") as sb:
        sb.register_key(USERNAME, key_pair.public_pem)
        yield sb


@pytest.fixture
def sandbox_settings(sandbox: MonetateSandbox) -> MonetateSettings:
    """Settings pointing at the sandbox."""
    return MonetateSettings(retailer="acme", secret_id="monetate/acme", api_url=sandbox.url, token_ttl=3600)


class Waits(list[float]):
    """An injected ``sleep`` that records the seconds instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def waits() -> Waits:
    return Waits()


@pytest.fixture
def make_client(
    sandbox_settings: MonetateSettings, secret_text: str, waits: Waits
) -> Callable[..., MonetateClient]:
    """``make_client(secret=..., sleep=...)`` → a factory-built client against the sandbox."""

    def make(secret: str | None = None, sleep: Callable[[float], None] | None = None) -> MonetateClient:
        value = secret_text if secret is None else secret

        def fetch(secret_id: str, **_: Any) -> str:
            return value

        return build_client(sandbox_settings, secrets_fetch=fetch, sleep=sleep or waits)

    return make
