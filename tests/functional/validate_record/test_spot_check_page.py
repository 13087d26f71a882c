"""The spot-check page in a real headless Chromium (Debian's, driven by Playwright; no downloads),
served by the real handler behind the local API Gateway front, against the sandbox and moto."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from monetate_ingest.monetate.factory import build_client
from monetate_ingest.settings import monetate_from_env

from functions.validate_record.app import lambda_handler
from local.api_front import ApiFront
from local.aws import MotoServer, forget_powertools_clients, patched_environ, provision
from local.sandbox import MonetateSandbox

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
USERNAME = "api-123-page"
API_KEY = "page-test-key-5f1c0e2a9b"
SCHEMA = {
    "name": "customers",
    "type": "attribute",
    "fields": {
        "customer_id": {"data_type": "STRING", "identifier": True},
        "email": {"data_type": "STRING"},
        "points": {"data_type": "NUMBER"},
        "note": {"data_type": "STRING"},
    },
}
ROW = {
    "customer_id": "C-7",
    "email": "ada@example.com",
    "points": 42,
    "note": "<img src=x onerror=alert(1)>",  # must be shown as text, never parsed
}


@dataclass
class Browser:
    page: Any
    base_url: str
    console: list[str] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def check(self, schema: str, record_id: str, key: str = API_KEY) -> None:
        self.page.get_by_label("Schema").fill(schema)
        self.page.get_by_label("Record id").fill(record_id)
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Check").click()

    def outcome(self) -> tuple[str, str]:
        """Wait for the answer; ``(status class, status text)``."""
        self.page.wait_for_selector("#status:not(.pending):not(:empty)", timeout=10_000)
        self.page.wait_for_selector("#check:not([disabled])", timeout=10_000)
        status = self.page.locator("#status")
        return status.get_attribute("class") or "", status.inner_text()


@pytest.fixture(scope="module")
def front(key_pair: Any) -> Iterator[ApiFront]:
    with MonetateSandbox(retailer="acme") as sandbox, MotoServer() as moto:
        sandbox.register_key(USERNAME, key_pair.public_pem)
        sandbox.add_schema(SCHEMA)
        secret = json.dumps({"username": USERNAME, "private_key": key_pair.pkcs8_pem})
        moto.reset()  # in-process moto servers share one backend: start from a clean account
        resources = provision(moto, secret_value=secret)
        env = {**moto.env(), **resources.function_env(retailer="acme", api_url=sandbox.url)}
        seeder = build_client(monetate_from_env(env), secrets_fetch=lambda *_a, **_k: secret)
        seeder.post_rows("customers", [ROW])
        # two rows for C-8 (the schema has no unique key): the later one has no email
        seeder.post_rows("customers", [{"customer_id": "C-8", "email": "old@example.com", "points": 1}])
        seeder.post_rows("customers", [{"customer_id": "C-8", "points": 2}])
        forget_powertools_clients()
        with patched_environ(env), ApiFront(lambda_handler, api_key=API_KEY) as api:
            yield api
        forget_powertools_clients()


@pytest.fixture(scope="module")
def browser(front: ApiFront) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is not installed: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = chromium.new_context(viewport={"width": 900, "height": 760})
        page = context.new_page()
        page.set_default_timeout(10_000)
        b = Browser(page=page, base_url=front.url)
        page.on("console", lambda msg: b.console.append(f"{msg.type}: {msg.text}"))
        page.on("request", lambda req: b.requests.append((req.url, dict(req.headers))))
        page.goto(front.url)
        yield b
        context.close()
        chromium.close()


def test_typing_a_schema_id_and_key_shows_the_record_as_a_table(browser: Browser, tmp_path: Path) -> None:
    # Given the page, loaded from the stage URL
    page = browser.page
    assert page.title() == "Monetate record spot check"
    assert "one lookup per second" in page.locator("#limit").inner_text()
    # When a person types a schema, an id and the API key, and presses Check
    browser.check("customers", "C-7")
    kind, text = browser.outcome()
    # Then the record is shown as a field | value table
    assert kind == "ok", text
    table = page.get_by_role("table")
    table.wait_for(state="visible")
    rows = {
        r.locator("th").inner_text(): r.locator("td").inner_text() for r in table.locator("tbody tr").all()
    }
    assert rows == {
        "customer_id": "C-7",
        "email": "ada@example.com",
        "points": "42",
        "note": "<img src=x onerror=alert(1)>",
    }
    # And the markup in the data stayed text
    assert page.locator("#record img").count() == 0
    page.screenshot(path=str(tmp_path / "record.png"), full_page=True)


def test_several_matches_show_the_first_with_every_field_and_say_how_many(browser: Browser) -> None:
    # Given two rows stored for C-8, the newer one without an email
    # When a person checks C-8
    browser.check("customers", "C-8")
    kind, text = browser.outcome()
    # Then the page says two records matched and shows the first Monetate returned (the newer),
    # every field of the schema, the absent ones as (empty)
    assert kind == "ok", text
    assert "2 records matched this id; showing the first." in text
    table = browser.page.get_by_role("table")
    rows = {
        r.locator("th").inner_text(): r.locator("td").inner_text() for r in table.locator("tbody tr").all()
    }
    assert rows == {"customer_id": "C-8", "email": "(empty)", "points": "2", "note": "(empty)"}


def test_the_call_went_to_the_stage_relative_api_with_the_key_header(browser: Browser) -> None:
    calls = [(u, h) for u, h in browser.requests if "/records/" in u]
    assert calls, browser.requests
    url, headers = calls[-1]
    assert url.startswith(browser.base_url + "records/customers/")
    assert headers.get("x-api-key") == API_KEY
    # Everything the page loaded came from the front itself, and the key is never in a URL
    assert all(u.startswith(browser.base_url.rsplit("/v1/", 1)[0]) for u, _ in browser.requests)
    assert all(API_KEY not in u for u, _ in browser.requests)


def test_an_unknown_id_shows_the_not_found_message(browser: Browser) -> None:
    browser.check("customers", "NOBODY-1")
    kind, text = browser.outcome()
    assert kind == "notfound"
    assert text.startswith("Not found")
    assert "NOBODY-1" in text
    assert browser.page.locator("#record").is_hidden()


def test_two_quick_lookups_show_the_slow_down_message(browser: Browser) -> None:
    # Given callers may not wait at all for the next one-per-second slot
    with patched_environ({"VALIDATOR_MAX_WAIT": "0"}):
        # When two lookups are made back to back
        browser.check("customers", "C-7")
        browser.outcome()
        browser.check("customers", "C-7")
        kind, text = browser.outcome()
    # Then the second is told to slow down, with the wait from Retry-After
    assert kind == "slowdown", text
    assert text.startswith("Slow down: try again in ")
    assert "one lookup per second" in text
    time.sleep(1.1)  # leave the budget as found


def test_a_wrong_key_shows_forbidden(browser: Browser) -> None:
    browser.check("customers", "C-7", key="not-the-key")
    kind, text = browser.outcome()
    assert kind == "forbidden"
    assert "API key" in text


def test_the_key_is_kept_only_in_the_page(browser: Browser) -> None:
    page = browser.page
    stored = page.evaluate(
        "() => [localStorage.length, sessionStorage.length, document.cookie, location.href]"
    )
    assert stored[:3] == [0, 0, ""]
    assert API_KEY not in stored[3]
    assert page.get_by_label("API key").get_attribute("type") == "password"


def test_csp_allows_the_inline_script_and_style_and_nothing_was_refused(browser: Browser) -> None:
    # The script ran (the lookups above worked); the style applied; no inline code was refused
    width = browser.page.evaluate("() => getComputedStyle(document.querySelector('main')).maxWidth")
    assert width == "736px"  # 46rem: the inline <style> is allowed by its hash
    refused = [
        m for m in browser.console if "Content Security Policy" in m and ("script" in m or "style" in m)
    ]
    assert refused == []
