"""ValidateRecord's resolver with a fake client: validation, pacing, and every error mapping."""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import logging
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from aws_lambda_powertools import Logger
from monetate_ingest.errors import SettingsError
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    BadRequestError,
    CredentialsError,
    KeyRevokedError,
    NotFoundError,
    PermanentApiError,
    RateLimitedError,
    TransientApiError,
    UnexpectedResponseError,
)
from monetate_ingest.spotcheck.app import Upstream, create_app, spot_check_page
from monetate_ingest.spotcheck.pacing import Pacer

from local.api_front import FakeLambdaContext, build_event, match_route

EVENTS = Path(__file__).resolve().parents[3] / "events"
RECORD_EVENT = json.loads((EVENTS / "api_gateway_get_record.json").read_text())
PAGE_EVENT = json.loads((EVENTS / "api_gateway_get_page.json").read_text())
API_KEY_VALUE = RECORD_EVENT["headers"]["x-api-key"]


# --- fakes -----------------------------------------------------------------------------------


class FakeReader:
    """Answers as the client does (the rows Monetate matched) from a dict of rows, or raises
    ``error`` (a missing key is Monetate's 404); records every call."""

    def __init__(self, records: dict[tuple[str, str], list[dict[str, Any]]] | None = None) -> None:
        self.records = records or {}
        self.error: BaseException | None = None
        self.calls: list[tuple[str, str]] = []

    def get_record(self, schema: str, record_id: str) -> list[dict[str, Any]]:
        self.calls.append((schema, record_id))
        if self.error is not None:
            raise self.error
        try:
            return self.records[(schema, record_id)]
        except KeyError:
            raise NotFoundError("GET /data/x/: not found (404)", status=404) from None


class FakeMetrics:
    def __init__(self) -> None:
        self.added: list[tuple[str, float]] = []

    def count(self, name: str, value: float = 1, *, schema: str | None = None) -> None:
        self.added.append((name, value))

    def names(self) -> list[str]:
        return [n for n, _ in self.added]


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class World:
    """An app wired to fakes, and a way to call it with real-shaped events."""

    def __init__(self, *, max_wait: float = 2.0, upstream_error: BaseException | None = None) -> None:
        self.reader = FakeReader({("customers", "C-1001"): [{"customer_id": "C-1001", "points": 12}]})
        self.metrics = FakeMetrics()
        self.clock = FakeClock()
        self.pacer = Pacer(clock=self.clock, sleep=self.clock.sleep)
        self.max_wait = max_wait
        self.upstream_error = upstream_error
        self.log = io.StringIO()
        # a fresh service name per world: Powertools keeps the first handler of a named logger
        logger = Logger(
            service=f"validator-test-{uuid.uuid4().hex[:8]}",
            level="DEBUG",
            logger_handler=logging.StreamHandler(self.log),
        )
        self.app = create_app(self.upstream, pacer=self.pacer, metrics=self.metrics, logger=logger)

    def upstream(self) -> Upstream:
        if self.upstream_error is not None:
            raise self.upstream_error
        return Upstream(reader=self.reader, max_wait=self.max_wait)

    def get(self, schema: str, record_id: str, *, path: str | None = None) -> Response:
        event = copy.deepcopy(RECORD_EVENT)
        event["path"] = path if path is not None else f"/records/{schema}/{record_id}"
        event["pathParameters"] = {"schema": schema, "id": record_id}
        return self.call(event)

    def call(self, event: dict[str, Any]) -> Response:
        return Response(self.app.resolve(event, FakeLambdaContext()))


class Response:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.status: int = raw["statusCode"]
        headers = {k: v[-1] for k, v in (raw.get("multiValueHeaders") or {}).items()}
        headers.update(raw.get("headers") or {})
        self.headers = {k.lower(): v for k, v in headers.items()}
        body = raw.get("body") or ""
        self.text = base64.b64decode(body).decode() if raw.get("isBase64Encoded") else body

    def json(self) -> Any:
        return json.loads(self.text)


@pytest.fixture
def world() -> World:
    return World()


def assert_error(resp: Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert set(body) == {"message", "error"}
    assert body["error"] == code
    assert isinstance(body["message"], str) and len(body["message"]) > 10
    return dict(body)


# --- 200 -------------------------------------------------------------------------------------


def test_found_record_is_returned_with_schema_and_id(world: World) -> None:
    # Given a stored record
    # When it is looked up
    resp = world.get("customers", "C-1001")
    # Then the caller sees it, once fetched upstream, counted as a spot check
    assert resp.status == 200
    record = {"customer_id": "C-1001", "points": 12}
    assert resp.json() == {"schema": "customers", "id": "C-1001", "record": record}
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["cache-control"] == "no-store"
    assert world.reader.calls == [("customers", "C-1001")]
    assert world.metrics.names() == ["SpotChecks"]


def test_sample_event_is_served_as_is(world: World) -> None:
    # Given the checked-in API Gateway event, untouched
    world.reader.records[("customers", "C-1001")] = [{"customer_id": "C-1001"}]
    # When the app resolves it
    resp = world.call(copy.deepcopy(RECORD_EVENT))
    # Then it is a lookup of its path parameters
    assert resp.status == 200
    assert resp.json()["id"] == "C-1001"


def test_ids_come_from_api_gateway_path_parameters_even_with_a_slash(world: World) -> None:
    # Given an id holding a slash (API Gateway decoded %2F into the path parameter)
    world.reader.records[("customers", "a/b")] = [{"customer_id": "a/b"}]
    # When it is looked up
    resp = world.get("customers", "a/b")
    # Then the exact id went upstream
    assert resp.status == 200
    assert world.reader.calls == [("customers", "a/b")]


def test_longest_allowed_schema_and_id_pass(world: World) -> None:
    # Given a 64-character schema and a 256-character id with punctuation and non-ASCII
    schema, record_id = "S" + "x" * 63, ("é@+.-_ " * 40)[:256]
    # When looked up
    resp = world.get(schema, record_id)
    # Then validation let them through to Monetate (which has no such record)
    assert resp.status == 404
    assert world.reader.calls == [(schema, record_id)]


# --- 400 validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "record_id", "code"),
    [
        ("1customers", "C-1", "invalid_schema_name"),
        ("..", "C-1", "invalid_schema_name"),
        ("c" * 65, "C-1", "invalid_schema_name"),
        ("custömers", "C-1", "invalid_schema_name"),
        ("customers", "x" * 257, "invalid_id"),
        ("customers", "C\x001", "invalid_id"),
        ("customers", "C\n1", "invalid_id"),
        ("customers", "C\x7f1", "invalid_id"),
    ],
)
def test_malformed_schema_or_id_is_refused_before_pacing(
    world: World, schema: str, record_id: str, code: str
) -> None:
    # Given a malformed schema name or id
    # When it is looked up
    body = assert_error(world.get(schema, record_id), 400, code)
    # Then Monetate was not called, no slot was taken, nothing was counted
    assert world.reader.calls == []
    assert world.pacer.granted == 0
    assert world.metrics.added == []
    assert "schema" in body["message"] or "id" in body["message"]


def test_empty_schema_segment_is_a_400_not_a_route_miss(world: World) -> None:
    # Given a path with an empty schema segment (no path parameters, as API Gateway would not match)
    event = copy.deepcopy(RECORD_EVENT)
    event["path"], event["pathParameters"] = "/records//C-1", None
    # Then it is validated like any lookup
    assert_error(world.call(event), 400, "invalid_schema_name")


def test_empty_id_is_a_400(world: World) -> None:
    event = copy.deepcopy(RECORD_EVENT)
    event["path"], event["pathParameters"] = "/records/customers/", None
    assert_error(world.call(event), 400, "invalid_id")


def test_unknown_route_is_404_in_the_same_shape(world: World) -> None:
    event = copy.deepcopy(PAGE_EVENT)
    event["path"] = "/nothing/here"
    assert_error(world.call(event), 404, "no_such_route")


# --- 404 -------------------------------------------------------------------------------------


def test_missing_record_is_404_naming_id_and_schema(world: World) -> None:
    # Given no such record
    # When it is looked up
    body = assert_error(world.get("customers", "NOPE-9"), 404, "not_found")
    # Then the message names both and warns about freshly posted records
    assert "NOPE-9" in body["message"] and "customers" in body["message"]
    assert "last few minutes" in body["message"]


def test_an_empty_schema_rows_is_404_not_found(world: World) -> None:
    # Given Monetate answering 200 with no row (its reference allows an empty schema_rows)
    world.reader.records[("customers", "GONE-1")] = []
    # When it is looked up
    body = assert_error(world.get("customers", "GONE-1"), 404, "not_found")
    # Then the caller reads "not found", never a found record, and the log says so (hash only)
    assert "GONE-1" in body["message"] and "customers" in body["message"]
    assert '"outcome":"not_found"' in world.log.getvalue().replace(" ", "")
    assert "GONE-1" not in world.log.getvalue()


def test_one_matching_row_is_the_record_itself_without_a_count(world: World) -> None:
    resp = world.get("customers", "C-1001")
    assert resp.status == 200
    assert resp.json()["record"] == {"customer_id": "C-1001", "points": 12}
    assert "matched" not in resp.json()


def test_several_matching_rows_give_the_first_and_say_how_many(world: World) -> None:
    # Given three rows for one identifier (a schema without a unique key), Monetate's order kept
    rows = [{"customer_id": "C-7", "visit": n} for n in (3, 2, 1)]
    world.reader.records[("visits", "C-7")] = rows
    # When it is looked up
    resp = world.get("visits", "C-7")
    # Then the record is the first row, and matched says 3 rows matched
    assert resp.status == 200
    assert resp.json() == {"schema": "visits", "id": "C-7", "record": rows[0], "matched": 3}


# --- 405 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
@pytest.mark.parametrize("path", ["/records/customers/C-1001", "/records/customers/a/b", "/"])
def test_other_methods_on_a_known_path_are_405_with_allow(world: World, method: str, path: str) -> None:
    # Given a request with another method than GET on the record or the page
    event = copy.deepcopy(RECORD_EVENT if path != "/" else PAGE_EVENT)
    event["httpMethod"], event["path"] = method, path
    # When it is resolved
    resp = world.call(event)
    # Then 405 says only GET is allowed, and nothing was paced or sent upstream
    body = assert_error(resp, 405, "method_not_allowed")
    assert resp.headers["allow"] == "GET"
    assert method in body["message"]
    assert world.reader.calls == [] and world.pacer.granted == 0


def test_another_method_on_an_unknown_path_stays_404(world: World) -> None:
    event = copy.deepcopy(PAGE_EVENT)
    event["httpMethod"], event["path"] = "POST", "/nothing/here"
    assert_error(world.call(event), 404, "no_such_route")


# --- 429 -------------------------------------------------------------------------------------


def test_second_lookup_within_the_wait_bound_waits_for_its_slot(world: World) -> None:
    # Given a lookup just made
    world.get("customers", "C-1001")
    start = world.clock.now
    # When a second one comes at once (the bound is 2 s)
    resp = world.get("customers", "C-1001")
    # Then it succeeded after waiting one spacing
    assert resp.status == 200
    assert world.clock.now == pytest.approx(start + world.pacer.spacing)


def test_pacer_refusal_is_429_with_retry_after(world: World) -> None:
    # Given callers that will not wait at all, and a slot just taken
    world.max_wait = 0.0
    world.get("customers", "C-1001")
    # When another lookup comes at once
    resp = world.get("customers", "C-1001")
    # Then it is told to slow down, with a whole-second Retry-After, and Monetate was not called
    body = assert_error(resp, 429, "too_many_lookups")
    assert resp.headers["retry-after"] == "2"  # 1.05 s rounded up
    assert "one record lookup per second" in body["message"]
    assert world.reader.calls == [("customers", "C-1001")]
    assert world.metrics.names() == ["SpotChecks", "SpotChecks", "SpotChecksThrottled"]


@pytest.mark.parametrize(("retry_after", "header"), [(2.5, "3"), (None, "1"), (0.0, "1"), (7.0, "7")])
def test_monetate_429_is_429_with_retry_after(world: World, retry_after: float | None, header: str) -> None:
    # Given Monetate answers 429
    world.reader.error = RateLimitedError("GET /data/x/: 429", retry_after=retry_after, status=429)
    # When a lookup is made
    resp = world.get("customers", "C-1001")
    # Then the caller gets 429 with an integer Retry-After of at least 1, never a retry upstream
    assert_error(resp, 429, "rate_limited")
    assert resp.headers["retry-after"] == header
    assert len(world.reader.calls) == 1
    assert "SpotChecksThrottled" in world.metrics.names()


# --- 502 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TransientApiError("GET /data/x/: Monetate answered HTTP 503", status=503), "upstream_error"),
        (TransientApiError("GET /data/x/ failed: ReadTimeout"), "upstream_error"),
        (UnexpectedResponseError("expected JSON, got HTML", status=502), "upstream_error"),
        (PermanentApiError("Monetate answered HTTP 409", status=409), "upstream_error"),
        (AuthenticationError("401 even with a fresh token", status=401), "upstream_auth_failed"),
        (requests.Timeout("read timed out"), "upstream_unavailable"),
        (requests.ConnectionError("refused"), "upstream_unavailable"),
    ],
)
def test_upstream_failures_are_502(world: World, error: BaseException, code: str) -> None:
    # Given Monetate fails this way
    world.reader.error = error
    # When a lookup is made
    resp = world.get("customers", "C-1001")
    # Then the caller gets a 502 it can act on, and the GET was made exactly once
    body = assert_error(resp, 502, code)
    assert "try again" in body["message"].lower() or "check" in body["message"].lower()
    assert len(world.reader.calls) == 1


def test_revoked_key_is_502_with_metric(world: World) -> None:
    # Given Monetate says the key was revoked
    world.reader.error = KeyRevokedError("403: revoked", status=403)
    # When a lookup is made
    body = assert_error(world.get("customers", "C-1001"), 502, "key_revoked")
    # Then the message says so and the alarm metric is emitted
    assert "revoked" in body["message"]
    assert "KeyRevoked" in world.metrics.names()


def test_revoked_key_while_minting_the_token_is_502() -> None:
    # Given the token mint (in the upstream provider) hits the revoked key
    world = World(upstream_error=KeyRevokedError("refresh: 403", status=403))
    # Then the same mapping applies and no slot was taken
    assert_error(world.get("customers", "C-1001"), 502, "key_revoked")
    assert world.pacer.granted == 0


# --- 400 from Monetate -------------------------------------------------------------------------


def test_monetate_400_relays_its_errors(world: World) -> None:
    # Given Monetate refuses the GET with meta.errors
    world.reader.error = BadRequestError(
        "400", status=400, meta_errors=[{"id": "unknown parameter"}, "schema is archived"]
    )
    # When a lookup is made
    body = assert_error(world.get("customers", "C-1001"), 400, "monetate_bad_request")
    # Then the caller sees Monetate's reasons
    assert "unknown parameter" in body["message"] and "schema is archived" in body["message"]


# --- 500 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        SettingsError("MONETATE_RETAILER is required but is not set"),
        CredentialsError("the secret monetate/acme is not JSON"),
    ],
)
def test_misconfiguration_is_500_with_the_safe_message(error: Exception) -> None:
    # Given a broken deployment
    world = World(upstream_error=error)
    # When a lookup is made
    body = assert_error(world.get("customers", "C-1001"), 500, "misconfigured")
    # Then the message says what to fix
    assert body["message"] == f"the function is misconfigured: {error}"


def test_unexpected_bug_is_500_without_details(world: World) -> None:
    # Given a bug in the client
    world.reader.error = RuntimeError("secret internals /var/task/x.py")
    # When a lookup is made
    body = assert_error(world.get("customers", "C-1001"), 500, "internal_error")
    # Then the caller gets no internals
    assert "internals" not in body["message"]


# --- logs --------------------------------------------------------------------------------------


def test_logs_never_hold_the_api_key_or_the_record_id(world: World) -> None:
    # Given lookups that succeed, fail and are refused, with the DEBUG level on
    world.get("customers", "C-1001")
    world.reader.error = TransientApiError("boom", status=500)
    world.get("customers", "C-1001")
    world.call(copy.deepcopy(PAGE_EVENT))
    # Then the log has the key's id and the id's hash, never the key value or the id
    text = world.log.getvalue()
    assert "spot check" in text
    assert API_KEY_VALUE not in text
    assert "C-1001" not in text
    assert hashlib.sha256(b"C-1001").hexdigest()[:12] in text
    assert RECORD_EVENT["requestContext"]["identity"]["apiKeyId"] in text


# --- the page --------------------------------------------------------------------------------


def test_page_is_served_with_a_hash_based_csp(world: World) -> None:
    # Given the page event
    # When it is served
    resp = world.call(copy.deepcopy(PAGE_EVENT))
    # Then it is HTML with the security headers
    assert resp.status == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["cache-control"] == "no-store"
    csp: dict[str, str] = {}
    for directive in resp.headers["content-security-policy"].split(";"):
        name, _, value = directive.strip().partition(" ")
        csp[name] = value
    assert csp["default-src"] == "'none'"
    assert csp["connect-src"] == "'self'"
    assert csp["form-action"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    # And the hashes are exactly those of the inline script and style
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", resp.text, flags=re.DOTALL)
        assert len(blocks) == 1
        digest = base64.b64encode(hashlib.sha256(blocks[0].encode()).digest()).decode()
        assert csp[directive] == f"'sha256-{digest}'"
    assert "unsafe" not in resp.headers["content-security-policy"]


def test_page_is_self_contained_and_keeps_the_key_in_memory() -> None:
    # Given the page source
    html = spot_check_page().html
    # Then it loads nothing from elsewhere and never persists or exposes the key
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    for forbidden in (
        "localStorage",
        "sessionStorage",
        "document.cookie",
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "style=",
    ):
        assert forbidden not in html, forbidden
    assert re.search(r'<input id="api-key" type="password"[^>]*autocomplete="off"', html)
    assert " name=" not in html.split("<form", 1)[1]  # unnamed inputs: a form submit carries nothing
    # And it has labelled fields, the limit sentence and relative API calls
    for field_id in ("schema", "record-id", "api-key"):
        assert f'<label for="{field_id}">' in html
    assert "one lookup per second" in html and "never for monitoring" in html
    assert '"records/"' in html and "x-api-key" in html


def test_page_and_csp_are_built_once() -> None:
    assert spot_check_page() is spot_check_page()


def test_create_app_touches_nothing_until_a_lookup() -> None:
    # Given an upstream that would fail loudly
    calls: list[str] = []

    def upstream() -> Upstream:
        calls.append("called")
        raise AssertionError("no lookup yet")

    # When the app is built and the page is served
    app = create_app(upstream, pacer=Pacer(), metrics=FakeMetrics())
    app.resolve(copy.deepcopy(PAGE_EVENT), FakeLambdaContext())
    # Then the upstream was never asked for
    assert calls == []


# --- the handler module and the local front's events -------------------------------------------


def test_importing_the_handler_builds_nothing_and_imports_nothing_heavy() -> None:
    # Given a fresh interpreter with no AWS or Monetate settings at all
    code = (
        "import sys\n"
        "import functions.validate_record.app as app\n"
        "assert not app.handler.built\n"
        "heavy = [m for m in ('monetate_ingest.spotcheck.app', 'requests', 'boto3') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    root = Path(__file__).resolve().parents[3]
    env = {
        "PYTHONPATH": f"{root / 'layers' / 'monetate_ingest'}{os.pathsep}{root}",
        "PATH": os.environ["PATH"],
    }
    # When the handler module is imported
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, check=False)
    # Then it worked without configuration and loaded neither the app, requests nor boto3
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_local_front_builds_events_shaped_like_the_sample() -> None:
    # Given a request as the local front receives it
    event = build_event(
        method="GET",
        raw_path="/records/customers/C%2D1001",
        query="",
        headers=[("Host", "127.0.0.1:9"), ("x-api-key", "k"), ("Accept", "application/json")],
        body=b"",
        resource="/records/{schema}/{id}",
        path_parameters={"schema": "customers", "id": "C-1001"},
        stage="v1",
        source_ip="127.0.0.1",
        api_key="k",
        host="127.0.0.1:9",
    )
    # Then it has every key of the real-shaped sample, at every level that matters
    assert set(event) == set(RECORD_EVENT)
    assert set(event["requestContext"]) == set(RECORD_EVENT["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(RECORD_EVENT["requestContext"]["identity"])
    assert event["requestContext"]["stage"] == "v1"
    assert event["requestContext"]["path"] == "/v1/records/customers/C%2D1001"
    assert event["path"] == "/records/customers/C-1001"
    assert event["multiValueHeaders"]["x-api-key"] == ["k"]
    assert event["requestContext"]["identity"]["apiKeyId"] == "local-api-key"
    assert (event["body"], event["isBase64Encoded"]) == (None, False)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ("/", {}, False)),
        ("/records/customers/C-1", ("/records/{schema}/{id}", {"schema": "customers", "id": "C-1"}, True)),
        ("/records/customers/a%2Fb", ("/records/{schema}/{id}", {"schema": "customers", "id": "a/b"}, True)),
        ("/records/customers/", None),
        ("/records/customers", None),
        ("/records/a/b/c", None),
        ("/other", None),
    ],
)
def test_front_route_matching(path: str, expected: tuple[str, dict[str, str], bool] | None) -> None:
    assert match_route(path) == expected
