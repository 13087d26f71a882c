"""No private key, JWT or token ever reaches the logs, even at DEBUG, with faults and a re-mint."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.exceptions import CredentialsError
from monetate_ingest.observability import logger

from local.sandbox import FaultConfig, MonetateSandbox

SCHEMA = {
    "name": "customers",
    "type": "attribute",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True, "unique_key": True},
        "tier": {"data_type": "STRING"},
    },
}


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """Powertools logger and the root logger at DEBUG; a handler with Powertools' JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    handler.setLevel(logging.DEBUG)
    target = logging.getLogger(logger.name)
    previous = target.level
    logger.setLevel("DEBUG")
    target.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield stream
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)


def spy_secrets(client: MonetateClient) -> set[str]:
    """Collect every JWT and token the client sends (session hook + token provider spy)."""
    seen: set[str] = set()

    def on_response(r: requests.Response, **_: Any) -> None:
        for prepared in [h.request for h in r.history] + [r.request]:
            value = str(prepared.headers.get("Authorization", ""))
            seen.add(value.split(" ", 1)[-1])

    client.session.hooks["response"].append(on_response)
    assert client.tokens is not None
    real = client.tokens.token

    def token() -> str:
        value = real()
        seen.add(value)
        return value

    client.tokens.token = token  # type: ignore[method-assign]
    return seen


def test_full_path_never_logs_key_jwt_or_token(
    sandbox: MonetateSandbox,
    make_client: Callable[..., MonetateClient],
    key_pair: Any,
    everything_logged: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Given a client built from the secret, faults on every endpoint, and everything at DEBUG
    sandbox.add_schema(SCHEMA)
    client = make_client()
    seen = spy_secrets(client)
    sandbox.faults = FaultConfig(error_rate=0.2, rate_429=0.05, retry_after=0.5, html_error_rate=0.05, seed=5)
    # When it posts, its token is ended early (401 → re-mint), it posts again and reads a record
    for i in range(10):
        client.post_rows("customers", [{"customer_id": f"c-{i}", "tier": "gold"}])
    sandbox.expire_tokens()
    client.post_rows("customers", [{"customer_id": "c-x", "tier": "silver"}])
    sandbox.faults = FaultConfig()
    assert client.get_record("customers", "c-x")[0]["tier"] == "silver"
    # And a malformed secret is reported through logger.exception
    try:
        make_client(
            secret=json.dumps({"username": "u", "private_key": key_pair.pkcs8_pem[:300]})
        ).list_schemas()
    except CredentialsError:
        logger.exception("credentials failed")
    # Then something was logged, retries happened, a token was re-minted
    out, err = capfd.readouterr()
    captured = "\n".join([everything_logged.getvalue(), caplog.text, out, err])
    captured += "\n".join(repr(r.__dict__) for r in caplog.records)
    assert "minted Monetate token" in captured and client.stats["retries"] > 0
    assert client.tokens is not None and client.tokens.mints >= 2
    # And no private key line, JWT or token appears anywhere
    secrets = {s for s in seen if len(s) > 20}
    assert len(secrets) >= 3  # two tokens and the JWT(s) (identical within one second)
    for line in key_pair.body_lines:
        assert line not in captured
    for secret in secrets:
        assert secret not in captured
        assert secret.split(".")[-1] not in captured  # not even a JWT's signature part
