"""Sandbox fixtures: a Monetate sandbox on loopback with the test key registered, and clients
built by the real factory against it (secret from a fake fetch, waits recorded, not slept)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.factory import build_client
from monetate_ingest.settings import MonetateSettings

from local.sandbox import MonetateSandbox, exchanges

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


# --- the contract checks, on for every sandbox of every test ----------------------------------

#: Every exchange of every sandbox in this process (fixtures, ``local.stack``, a test's own).
CONTRACT_LOG = exchanges.ExchangeLog()
INVALID_REQUESTS_MARKER = "sends_invalid_requests"
_checkers: list[Any] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{INVALID_REQUESTS_MARKER}: the test sends the sandbox requests the reference does not allow, "
        "on purpose; the contract checks still hold the answers to the reference's refusals",
    )


def contract_violations(recorded: list[exchanges.Exchange], *, invalid_requests_expected: bool) -> str | None:
    """The failure text for ``recorded``, or None when every exchange kept to the reference."""
    if not recorded:
        return None  # no sandbox in this test: nothing imported, nothing checked
    if not _checkers:
        from local.sandbox.contract import ContractChecker

        _checkers.append(ContractChecker())
    violations = _checkers[0].check_all(recorded, invalid_requests_expected=invalid_requests_expected)
    if not violations:
        return None
    lines = "\n".join(f"  - {v}" for v in violations)
    return (
        f"{len(violations)} contract violation(s) in {len(recorded)} exchange(s) with the Monetate "
        f"sandbox (docs/reference/monetate/, README 'The contract checks'):\n{lines}"
    )


@pytest.fixture(scope="session", autouse=True)
def monetate_contract_recording() -> Iterator[None]:
    """Records every sandbox exchange for the whole session; checks what the last tests left."""
    with exchanges.recording(CONTRACT_LOG):
        yield
    failure = contract_violations(CONTRACT_LOG.drain(), invalid_requests_expected=False)
    if failure:
        pytest.fail(failure, pytrace=False)


@pytest.fixture(autouse=True)
def monetate_contract(request: pytest.FixtureRequest, monetate_contract_recording: None) -> Iterator[None]:
    """Fails the test when a request it made, or an answer it got, broke the reference."""
    yield
    expected = request.node.get_closest_marker(INVALID_REQUESTS_MARKER) is not None
    failure = contract_violations(CONTRACT_LOG.drain(), invalid_requests_expected=expected)
    if failure:
        pytest.fail(failure, pytrace=False)
