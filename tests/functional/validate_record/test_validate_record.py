"""ValidateRecord's real handler against the Monetate sandbox and moto (the secret in Secrets Manager).

The handler keeps its container state between tests (one pacer, one client), as a warm Lambda
container does, so lookups in consecutive tests are themselves paced one second apart.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from monetate_ingest.monetate.factory import build_client
from monetate_ingest.settings import monetate_from_env

from functions.validate_record.app import lambda_handler
from local.api_front import ApiFront, FakeLambdaContext
from local.aws import LocalResources, MotoServer, forget_powertools_clients, patched_environ, provision
from local.sandbox import LoggedRequest, MonetateSandbox
from local.sandbox.faults import FaultConfig

USERNAME = "api-123-validator"
RECORD_EVENT = json.loads(
    (Path(__file__).resolve().parents[3] / "events" / "api_gateway_get_record.json").read_text()
)
CUSTOMERS = {
    "name": "customers",
    "type": "attribute",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True},
        "email": {"data_type": "STRING"},
        "points": {"data_type": "NUMBER"},
        "vip": {"data_type": "BOOLEAN"},
    },
}
ROWS = [
    {"customer_id": "C-1001", "email": "ada@example.com", "points": 12, "vip": True},
    {"customer_id": "C-1002", "email": "bob@example.com", "points": 3, "vip": False},
]


@dataclass
class Stack:
    sandbox: MonetateSandbox
    resources: LocalResources
    env: dict[str, str]
    secret: str

    def record_gets(self, since: float = 0.0) -> list[LoggedRequest]:
        """Single-record GETs that *arrived* after ``since`` (monotonic; the log is in answer order)."""
        return [
            r
            for r in self.sandbox.requests
            if r.method == "GET" and "/data/" in r.path and "id" in r.query and r.started >= since
        ]


@pytest.fixture(scope="module")
def stack(key_pair: Any) -> Iterator[Stack]:
    with MonetateSandbox(retailer="acme") as sandbox, MotoServer() as moto:
        sandbox.register_key(USERNAME, key_pair.public_pem)
        sandbox.add_schema(CUSTOMERS)
        secret = json.dumps({"username": USERNAME, "private_key": key_pair.pkcs8_pem})
        moto.reset()  # in-process moto servers share one backend: start from a clean account
        resources = provision(moto, secret_value=secret)
        env = {
            **moto.env(),
            **resources.function_env(retailer="acme", api_url=sandbox.url),
            # proves the handler forces Logger's log_event off: the event holds the API key
            "POWERTOOLS_LOGGER_LOG_EVENT": "true",
        }
        seeder = build_client(
            monetate_from_env(env), secrets_fetch=lambda *_a, **_k: secret, sleep=lambda _s: None
        )
        seeder.post_rows("customers", ROWS)
        forget_powertools_clients()
        with patched_environ(env):
            yield Stack(sandbox, resources, env, secret)
        forget_powertools_clients()


def invoke(schema: str, record_id: str, *, path: str | None = None) -> tuple[int, dict[str, str], Any]:
    event = copy.deepcopy(RECORD_EVENT)
    event["path"] = path or f"/records/{schema}/{record_id}"
    event["requestContext"]["path"] = "/v1" + event["path"]
    event["pathParameters"] = {"schema": schema, "id": record_id}
    result = lambda_handler(event, FakeLambdaContext())
    headers = {k.lower(): v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update({k.lower(): v for k, v in (result.get("headers") or {}).items()})
    return result["statusCode"], headers, json.loads(result["body"])


# --- the mapping, end to end -------------------------------------------------------------------


def test_200_returns_the_stored_record(stack: Stack) -> None:
    # Given a record posted to the sandbox
    before = time.monotonic()
    # When it is looked up through the handler
    status, _, body = invoke("customers", "C-1001")
    # Then the caller sees it, fetched with one single-record GET
    assert status == 200
    assert body == {"schema": "customers", "id": "C-1001", "record": ROWS[0]}
    gets = stack.record_gets(before)
    assert [(g.query["id"], g.status) for g in gets] == [("C-1001", 200)]


def test_200_gives_the_first_of_several_matches_and_how_many(stack: Stack) -> None:
    # Given two more rows for C-2002 (the schema has no unique key), the later without an email
    seeder = build_client(monetate_from_env(stack.env), secrets_fetch=lambda *_a, **_k: stack.secret)
    seeder.post_rows("customers", [{"customer_id": "C-2002", "email": "x@example.com", "points": 1}])
    seeder.post_rows("customers", [{"customer_id": "C-2002", "points": 2}])
    # When C-2002 is looked up
    status, _, body = invoke("customers", "C-2002")
    # Then the record is the first row Monetate returned (the sandbox: the latest), every field
    # of the schema there (null where absent), and matched says 2
    assert status == 200
    assert body == {
        "schema": "customers",
        "id": "C-2002",
        "record": {"customer_id": "C-2002", "email": None, "points": 2, "vip": None},
        "matched": 2,
    }


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_405_with_allow_for_other_methods_never_reaches_monetate(stack: Stack, method: str) -> None:
    # Given a request with another method on the record resource, as the function receives it
    event = copy.deepcopy(RECORD_EVENT)
    event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    before = time.monotonic()
    result = lambda_handler(event, FakeLambdaContext())
    # Then 405 with Allow: GET, and no request reached Monetate
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    headers.update({k.lower(): v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
    assert result["statusCode"] == 405 and headers["allow"] == "GET"
    assert json.loads(result["body"])["error"] == "method_not_allowed"
    assert [r for r in stack.sandbox.requests if r.started >= before] == []


def test_400_for_a_bad_schema_name_never_reaches_monetate(stack: Stack) -> None:
    before = time.monotonic()
    status, _, body = invoke("drop table", "C-1")
    assert status == 400
    assert body["error"] == "invalid_schema_name"
    assert [r for r in stack.sandbox.requests if r.started >= before] == []


def test_404_for_a_missing_record(stack: Stack) -> None:
    status, _, body = invoke("customers", "NOBODY")
    assert status == 404
    assert body["error"] == "not_found"
    assert "NOBODY" in body["message"]


def test_404_for_a_missing_schema(stack: Stack) -> None:
    status, _, body = invoke("no_such_schema", "C-1001")
    assert status == 404
    assert body["error"] == "not_found"


def test_429_when_monetate_says_too_many_requests(stack: Stack) -> None:
    # Given Monetate answers 429 with Retry-After: 3
    stack.sandbox.faults = FaultConfig(rate_429=1.0, retry_after=3, apply_to="data")
    before = time.monotonic()
    try:
        # When a lookup is made
        status, headers, body = invoke("customers", "C-1001")
    finally:
        stack.sandbox.faults = FaultConfig()
    # Then the caller is told to slow down for 3 s, and the GET was sent once, never retried
    assert status == 429
    assert headers["retry-after"] == "3"
    assert body["error"] == "rate_limited"
    assert len(stack.record_gets(before)) == 1


def test_429_from_the_pacer_when_a_lookup_would_wait_too_long(stack: Stack) -> None:
    # Given callers that may not wait at all
    with patched_environ({"VALIDATOR_MAX_WAIT": "0"}):
        before = time.monotonic()
        # When two lookups come back to back
        first = invoke("customers", "C-1002")
        second = invoke("customers", "C-1002")
    # Then the second is refused with Retry-After before reaching Monetate
    assert first[0] in (200, 429)  # 429 if the previous test's slot was still running
    status, headers, body = second
    assert status == 429
    assert body["error"] == "too_many_lookups"
    assert int(headers["retry-after"]) >= 1
    assert "one record lookup per second" in body["message"]
    assert len(stack.record_gets(before)) <= 1


@pytest.mark.parametrize(
    ("faults", "detail"),
    [
        (FaultConfig(error_rate=1.0, apply_to="data"), "HTTP 500"),
        (FaultConfig(html_error_rate=1.0, apply_to="data"), "expected Monetate's JSON envelope"),
    ],
)
def test_502_when_monetate_fails(stack: Stack, faults: FaultConfig, detail: str) -> None:
    # Given Monetate answers 5xx (JSON, or an HTML page from a proxy)
    stack.sandbox.faults = faults
    before = time.monotonic()
    try:
        status, _, body = invoke("customers", "C-1001")
    finally:
        stack.sandbox.faults = FaultConfig()
    # Then the caller gets 502 saying what happened, and the GET was not retried
    assert status == 502
    assert body["error"] == "upstream_error"
    assert detail in body["message"]
    assert len(stack.record_gets(before)) == 1


def test_502_when_monetate_does_not_answer_in_time(stack: Stack) -> None:
    # Given a read timeout shorter than Monetate's latency
    stack.sandbox.faults = FaultConfig(latency=0.6, apply_to="data")
    try:
        with patched_environ({"HTTP_READ_TIMEOUT": "0.2"}):
            status, _, body = invoke("customers", "C-1001")
    finally:
        stack.sandbox.faults = FaultConfig()
    assert status == 502
    assert body["error"] == "upstream_error"
    assert "Timeout" in body["message"]


def test_500_when_the_secret_is_missing(stack: Stack) -> None:
    with patched_environ({"MONETATE_SECRET_ID": "monetate/does-not-exist"}):
        status, _, body = invoke("customers", "C-1001")
    assert status == 500
    assert body["error"] == "misconfigured"
    assert body["message"].startswith("the function is misconfigured: ")
    assert "monetate/does-not-exist" in body["message"]


def test_500_when_a_setting_is_malformed(stack: Stack) -> None:
    with patched_environ({"VALIDATOR_MAX_WAIT": "soon"}):
        status, _, body = invoke("customers", "C-1001")
    assert status == 500
    assert body["error"] == "misconfigured"
    assert "VALIDATOR_MAX_WAIT" in body["message"]


# --- one per second, whatever the callers do ---------------------------------------------------


def test_six_concurrent_callers_are_paced_one_second_apart(stack: Stack, capfd: Any) -> None:
    # Given six callers who will each wait up to 10 s, starting at the same instant (the last needs
    # 5 s of it: room for a loaded machine)
    barrier = threading.Barrier(6)
    results: list[int] = []
    refusals: list[Any] = []
    lock = threading.Lock()
    before = time.monotonic()

    def caller(i: int) -> None:
        barrier.wait()
        status, _, answer = invoke("customers", "C-1001" if i % 2 else "C-1002")
        with lock:
            results.append(status)
            if status != 200:
                refusals.append(answer)

    with patched_environ({"VALIDATOR_MAX_WAIT": "10"}):
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    # Then all six got their record
    assert sorted(results) == [200] * 6, refusals
    # And the sandbox saw six single-record GETs, at least 1.0 s apart, and never answered 429
    gets = stack.record_gets(before)
    assert len(gets) == 6
    assert all(g.status == 200 for g in gets)
    starts = sorted(g.started for g in gets)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 1.0, gaps
    assert stack.sandbox.counts["record_gets_limited"] == 0
    # And nothing the function printed holds the API key, the private key or a token
    out = capfd.readouterr()
    printed = out.out + out.err
    assert RECORD_EVENT["headers"]["x-api-key"] not in printed
    key_body = json.loads(stack.secret)["private_key"].splitlines()[1]
    assert key_body not in printed
    assert "Authorization" not in printed and "Token " not in printed
    assert '"SpotChecks"' in printed  # the metrics were published (EMF on stdout)


# --- through the local API Gateway front -----------------------------------------------------------


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_front_enforces_the_api_key_like_api_gateway(stack: Stack) -> None:
    # Given the handler behind the local API Gateway front, with a key
    with ApiFront(lambda_handler, api_key="front-test-key-123") as front:
        before = time.monotonic()
        # When records are asked for without a key, with a wrong one, and with the right one
        missing = http_get(front.url + "records/customers/C-1001")
        wrong = http_get(front.url + "records/customers/C-1001", {"x-api-key": "nope"})
        right = http_get(front.url + "records/customers/C-1001", {"x-api-key": "front-test-key-123"})
        page = http_get(front.url)
        elsewhere = http_get(front.url.replace("/v1/", "/v2/"))
    # Then only the right key reaches the function; the page needs none
    assert (missing[0], json.loads(missing[2])) == (403, {"message": "Forbidden"})
    assert (wrong[0], json.loads(wrong[2])) == (403, {"message": "Forbidden"})
    assert right[0] == 200
    assert json.loads(right[2])["record"] == ROWS[0]
    assert len(stack.record_gets(before)) == 1
    assert page[0] == 200 and page[1]["content-type"].startswith("text/html")
    assert "content-security-policy" in page[1]
    assert elsewhere[0] == 403


def test_front_decodes_path_parameters(stack: Stack) -> None:
    # Given an id that needs escaping in a URL
    with ApiFront(lambda_handler, api_key=None) as front:
        quoted = urllib.parse.quote("no body@x.y", safe="")
        status, _, body = http_get(front.url + "records/customers/" + quoted)
    # Then the function got the decoded id
    assert status == 404
    assert "'no body@x.y'" in json.loads(body)["message"]


# --- last: it revokes the key ------------------------------------------------------------------


def test_502_when_the_key_was_revoked(stack: Stack, capfd: Any) -> None:
    # Given the API user's key is revoked in Monetate
    stack.sandbox.revoke_key(USERNAME)
    # When a lookup is made
    status, _, body = invoke("customers", "C-1001")
    # Then the caller is told the function's key was revoked, and the alarm metric went out
    assert status == 502
    assert body["error"] == "key_revoked"
    assert "revoked" in body["message"]
    assert '"KeyRevoked"' in capfd.readouterr().out
