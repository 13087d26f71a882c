"""Fault injection, the request log, reset, and the server's keep-alive speed and concurrency."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.sandbox import FaultConfig, MonetateSandbox

USER = "api-123-test"
SCHEMA = {"name": "customers", "fields": {"customer_id": {"data_type": "STRING", "identifier": True}}}
ROWS = {"schema_rows": [{"customer_id": "c1"}]}


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def sandbox(pem: bytes) -> Iterator[MonetateSandbox]:
    with MonetateSandbox("acme") as sb:
        sb.register_key(USER, pem)
        sb.add_schema(SCHEMA)
        yield sb


def jwt_header(key: rsa.RSAPrivateKey) -> dict[str, str]:
    signed = jwt.encode({"username": USER, "iat": time.time()}, key, algorithm="RS256")
    return {"Authorization": f"JWT {signed}"}


@pytest.fixture
def session(sandbox: MonetateSandbox, key: rsa.RSAPrivateKey) -> requests.Session:
    s = requests.Session()
    token = s.get(sandbox.auth_url, headers=jwt_header(key), timeout=5).json()["data"]["token"]
    s.headers["Authorization"] = f"Token {token}"
    return s


def post_rows(sb: MonetateSandbox, s: requests.Session, body: Any = ROWS) -> requests.Response:
    return s.post(f"{sb.data_url}/data/customers/", json=body, timeout=5)


def test_error_rate_one_gives_500s_in_the_envelope(
    sandbox: MonetateSandbox, session: requests.Session, key: rsa.RSAPrivateKey
) -> None:
    # Given every request fails
    sandbox.faults.error_rate = 1.0
    # When posting rows and minting a token
    data = post_rows(sandbox, session)
    auth = session.get(sandbox.auth_url, headers=jwt_header(key), timeout=5)
    # Then both are 500 in the envelope, nothing is stored, and the faults are counted
    assert (data.status_code, auth.status_code) == (500, 500)
    assert data.json()["meta"]["code"] == 500 and data.json()["meta"]["errors"]
    assert sandbox.rows("customers") == []
    assert sandbox.counts["faults"] == 2


@pytest.mark.parametrize(
    ("apply_to", "auth_status", "schema_status", "post_status"),
    [("data", 200, 500, 500), ("post", 200, 200, 500)],
)
def test_faults_apply_only_where_configured(
    sandbox: MonetateSandbox,
    session: requests.Session,
    key: rsa.RSAPrivateKey,
    apply_to: Any,
    auth_status: int,
    schema_status: int,
    post_status: int,
) -> None:
    # Given faults limited to the Data API or to data POSTs
    sandbox.faults = FaultConfig(error_rate=1.0, apply_to=apply_to)
    # When calling auth, a schema GET and a data POST
    auth = session.get(sandbox.auth_url, headers=jwt_header(key), timeout=5)
    schema = session.get(f"{sandbox.data_url}/schema/", timeout=5)
    # Then only the covered ones fail
    assert (auth.status_code, schema.status_code, post_rows(sandbox, session).status_code) == (
        auth_status,
        schema_status,
        post_status,
    )


@pytest.mark.parametrize(("retry_after", "header"), [(2, "2"), (0.5, "0.5"), (None, None)])
def test_rate_429_with_and_without_retry_after(
    sandbox: MonetateSandbox, session: requests.Session, retry_after: float | None, header: str | None
) -> None:
    # Given every request is throttled
    sandbox.faults = FaultConfig(rate_429=1.0, retry_after=retry_after)
    # When posting
    answer = post_rows(sandbox, session)
    # Then 429 in the envelope, with Retry-After only when configured
    assert answer.status_code == 429 and answer.json()["meta"]["code"] == 429
    assert answer.headers.get("Retry-After") == header


def test_html_errors_are_502_with_a_proxy_page(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given a proxy in front that fails every time
    sandbox.faults.html_error_rate = 1.0
    # When posting
    answer = post_rows(sandbox, session)
    # Then 502 with an HTML body that is not JSON
    assert answer.status_code == 502
    assert answer.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        answer.json()


def test_latency_and_spikes_are_added(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given 0.1 s latency and a certain 0.1 s spike
    sandbox.faults = FaultConfig(latency=0.1, latency_spikes=(1.0, 0.1))
    # When posting
    started = time.perf_counter()
    answer = post_rows(sandbox, session)
    # Then the answer is normal but takes at least 0.2 s
    assert answer.status_code == 201
    assert time.perf_counter() - started >= 0.2


def test_seeded_faults_repeat(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given half the requests fail, with a seed
    def run() -> list[int]:
        sandbox.faults = FaultConfig(error_rate=0.5, seed=7)
        return [post_rows(sandbox, session).status_code for _ in range(20)]

    # When the same sequence is run twice
    first, second = run(), run()
    # Then the outcomes repeat and mix both kinds
    assert first == second and {500, 201} == set(first)


def test_the_request_log_never_holds_credentials(
    sandbox: MonetateSandbox, session: requests.Session, key: rsa.RSAPrivateKey
) -> None:
    # Given a JWT exchange and a Data API call
    signed = jwt_header(key)
    token = session.get(sandbox.auth_url, headers=signed, timeout=5).json()["data"]["token"]
    post_rows(sandbox, session)
    # When the log is read
    log = sandbox.requests
    # Then it records method, path, status, user and times, but no JWT or token
    dump = repr(log)
    assert signed["Authorization"][4:] not in dump and token not in dump
    assert str(session.headers["Authorization"])[6:] not in dump
    last = log[-1]
    assert (last.method, last.path, last.status, last.username) == (
        "POST",
        "/api/data/v1/acme/production/data/customers/",
        201,
        USER,
    )
    assert last.started <= last.finished
    assert log[0].path == "/api/auth/v0/refresh/" and log[0].username == USER


def test_reset_clears_rows_log_counts_and_faults(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given stored rows, a log and faults
    post_rows(sandbox, session)
    sandbox.faults.latency = 5.0
    # When reset
    sandbox.reset()
    # Then rows, log, counters and faults are clean, and the schema remains usable
    assert sandbox.rows("customers") == [] and sandbox.requests == []
    assert sandbox.counts["data_posts"] == 0 and sandbox.faults == FaultConfig()
    assert post_rows(sandbox, session).status_code == 201


def test_keep_alive_posts_are_fast(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given a keep-alive session (Nagle + delayed ACK would cost ~40 ms per request)
    post_rows(sandbox, session)
    # When 100 POSTs go out one after another
    started = time.perf_counter()
    for _ in range(100):
        assert post_rows(sandbox, session).status_code == 201
    # Then they take well under a second
    assert time.perf_counter() - started < 1.0
    assert sandbox.counts["data_posts"] == 101


def test_many_concurrent_clients_are_served(sandbox: MonetateSandbox, session: requests.Session) -> None:
    # Given 40 threads each with a fresh connection
    token_header = session.headers["Authorization"]

    def one(_: int) -> int:
        with requests.Session() as s:
            body = {"schema_rows": [{"customer_id": "c"}]}
            return s.post(
                f"{sandbox.data_url}/data/customers/",
                json=body,
                headers={"Authorization": token_header},
                timeout=5,
            ).status_code

    # When they post at once
    started = time.perf_counter()
    with ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(one, range(200)))
    # Then every one succeeds quickly and every row is stored
    assert statuses == [201] * 200
    assert time.perf_counter() - started < 5.0
    assert len(sandbox.rows("customers")) == 200


def test_standalone_cli_prints_its_url_and_registers_keys(
    tmp_path: Path, pem: bytes, key: rsa.RSAPrivateKey
) -> None:
    # Given a public key file
    pem_path = tmp_path / "key.pem"
    pem_path.write_bytes(pem)
    schema_path = tmp_path / "schema.json"
    schema_path.write_text(json.dumps(SCHEMA))
    # When the sandbox runs standalone
    args = [
        "--port",
        "0",
        "--retailer",
        "shop",
        "--register-key",
        f"{USER}:{pem_path}",
        "--schema",
        str(schema_path),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "local.sandbox", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[3],
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        # Then it answers on that URL with the key and schema registered
        token = requests.get(f"{url}/api/auth/v0/refresh/", headers=jwt_header(key), timeout=5)
        assert token.status_code == 200
        schema = requests.get(
            f"{url}/api/data/v1/shop/production/schema/customers/",
            timeout=5,
            headers={"Authorization": f"Token {token.json()['data']['token']}"},
        )
        assert schema.status_code == 200
        assert url.startswith("http://127.0.0.1:")
    finally:
        proc.terminate()
        proc.wait(timeout=5)
