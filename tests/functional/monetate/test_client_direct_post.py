"""The data POST's direct path (the session's urllib3 pool, no ``Session.request``) against the
sandbox: the same answers as the requests path, requests' own exceptions, proxies left to requests."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.direct_post import DirectPost
from monetate_ingest.monetate.exceptions import DeadlineExceededError, KeyRevokedError, TransientApiError

from local.sandbox import FaultConfig, MonetateSandbox
from tests.functional.monetate.test_client_sandbox import PURCHASES, ROW, data_requests

MakeClient = Callable[..., MonetateClient]


class CountingSession:
    """Wraps a session's ``request`` to count what goes through requests' machinery."""

    def __init__(self, client: MonetateClient) -> None:
        self.calls: list[str] = []
        original = client.session.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
            self.calls.append(f"{method} {url.rsplit('/api/', 1)[-1]}")
            return original(method, url, *args, **kwargs)

        client.session.request = request  # type: ignore[method-assign]


def test_data_posts_take_the_direct_path_with_the_same_outcome(
    sandbox: MonetateSandbox, make_client: MakeClient
) -> None:
    # Given a client against the sandbox, and one whose direct path is switched off
    sandbox.add_schema(PURCHASES)
    direct, plain = make_client(), make_client()
    plain.direct = None
    counted = CountingSession(direct)
    body = json.dumps({"schema_rows": [ROW, {**ROW, "purchase_id": "p-2"}]}).encode()
    # When the same body is posted by each
    answers = [direct.post_body("purchases", body), plain.post_body("purchases", body)]
    # Then both answers are the same, the rows are stored (upserted), and the direct client's
    # POST did not go through Session.request (only the schema-less token mint did, elsewhere)
    assert answers[0] == answers[1]
    assert [r["purchase_id"] for r in sandbox.rows("purchases")] == ["p-1", "p-2"]
    assert [r.status for r in data_requests(sandbox, "POST")] == [201, 201]
    assert not [c for c in counted.calls if c.startswith("POST")]
    assert direct.stats == {"requests": 1, "retries": 0, "throttled": 0}


def test_direct_path_reminted_token_after_401_and_403_is_revoked(
    sandbox: MonetateSandbox, make_client: MakeClient
) -> None:
    # Given a client whose token the sandbox ends early
    sandbox.add_schema(PURCHASES)
    client = make_client()
    client.post_rows("purchases", [ROW])
    sandbox.expire_tokens()
    # When it posts again  Then one 401, one fresh token, one re-send
    client.post_rows("purchases", [{**ROW, "purchase_id": "p-2"}])
    assert [r.status for r in data_requests(sandbox, "POST")] == [201, 401, 201]
    assert sandbox.counts["token_mints"] == 2
    # When the key is revoked  Then the next POST raises KeyRevokedError after one 403
    sandbox.revoke_key("api-123-example")
    with pytest.raises(KeyRevokedError) as caught:
        client.post_rows("purchases", [{**ROW, "purchase_id": "p-3"}])
    assert "revoked" in str(caught.value) and caught.value.status == 403
    assert [r.status for r in data_requests(sandbox, "POST")][-1:] == [403]


def test_direct_path_read_timeout_is_transient(
    sandbox: MonetateSandbox, make_client: MakeClient, waits: Any
) -> None:
    # Given data POSTs that answer after 0.5 s and a client whose read timeout is 0.1 s
    sandbox.add_schema(PURCHASES)
    client = make_client()
    client.post_rows("purchases", [ROW])  # token and connection first
    client.direct = DirectPost(client.session, client.auth, (3.05, 0.1))  # type: ignore[arg-type]
    sandbox.faults = FaultConfig(latency=0.5, apply_to="post")
    # When rows are posted  Then every attempt times out and the call fails as transient
    with pytest.raises(TransientApiError) as caught:
        client.post_rows("purchases", [{**ROW, "purchase_id": "p-2"}])
    assert "ReadTimeout" in str(caught.value) and len(waits) == 4


def test_direct_path_reads_no_longer_than_the_deadline_allows(
    sandbox: MonetateSandbox, make_client: MakeClient, waits: Any
) -> None:
    # Given data POSTs that answer after 1.5 s, and a client whose read timeout is 30 s
    sandbox.add_schema(PURCHASES)
    client = make_client()
    client.post_rows("purchases", [ROW])  # token and connection first
    counted = CountingSession(client)
    sandbox.faults = FaultConfig(latency=1.5, apply_to="post")
    body = json.dumps({"schema_rows": [{**ROW, "purchase_id": "p-2"}]}).encode()
    # When rows are posted on the direct path with half a second left before the deadline
    with pytest.raises(DeadlineExceededError) as caught:
        client.post_body("purchases", body, deadline=time.monotonic() + 0.5)
    # Then the read gave up with the deadline instead of waiting for the answer, nothing slept,
    # and the error says the rows are left for the next invocation
    message = str(caught.value)
    assert "stopped after 1 attempt" in message and "ReadTimeout" in message
    assert "left for the next invocation" in message
    assert waits == [] and counted.calls == []


def test_direct_path_refused_connection_is_transient(make_client: MakeClient, waits: Any) -> None:
    # Given a client whose Data API origin has nothing listening (the token comes from elsewhere)
    client = make_client()
    client.list_schemas()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client.base = f"http://127.0.0.1:{port}/api/data/v1/acme/production"
    # When rows are posted  Then the refusals are retried and end as TransientApiError
    with pytest.raises(TransientApiError) as caught:
        client.post_rows("purchases", [ROW])
    assert "ConnectionError" in str(caught.value) and len(waits) == 4


def test_an_origin_behind_a_proxy_is_left_to_requests(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch, sandbox: MonetateSandbox
) -> None:
    # Given HTTP_PROXY in the environment, with and without NO_PROXY covering the sandbox
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = make_client()
    assert proxied.direct is not None
    assert not proxied.direct.usable_for(proxied.base + "/data/x/")  # the environment is read now
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    bypassed = make_client()
    # Then only the client whose origin is not proxied posts directly
    assert bypassed.direct is not None
    assert bypassed.direct.usable_for(bypassed.base + "/data/x/")
