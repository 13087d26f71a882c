"""Schema names are checked before they reach a URL: by the rule, in the client, in the cache."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.exceptions import (
    InvalidSchemaNameError,
    PermanentApiError,
    UnknownSchemaError,
)
from monetate_ingest.monetate.names import MAX_SCHEMA_NAME, check_schema_name
from monetate_ingest.monetate.schema import SchemaCache
from requests import PreparedRequest
from requests.auth import AuthBase

BASE = "https://api.example.test/api/data/v1/acme/production"
REFUSED = [
    (".", "a dot segment is never a name"),
    ("..", "a dot segment is never a name"),
    ("a/b", "'/' at position 2 is not allowed"),
    ("%2F", "it starts with '%'"),
    ("a%2Fb", "'%' at position 2"),
    ("?", "it starts with '?'"),
    ("a?id=1", "'?' at position 2"),
    ("#", "it starts with '#'"),
    ("a#b", "'#' at position 2"),
    ("", "it is empty"),
    ("a" * (MAX_SCHEMA_NAME + 1), "it is 65 characters long"),
    ("1st", "it starts with '1'"),
    ("_x", "it starts with '_'"),
    ("-x", "it starts with '-'"),
    ("my schema", "' ' at position 3"),
    ("name\n", "'\\n' at position 5"),
    ("schéma", "'é' at position 4"),
    ("émails", "it starts with 'é'"),
    ("\u212aelvin", "it starts with"),  # KELVIN SIGN: lower() is ASCII 'k', still not a letter here
    ("\uff23ustomers", "it starts with"),  # FULLWIDTH LATIN CAPITAL LETTER C
]


@pytest.mark.parametrize(("name", "problem"), REFUSED)
def test_invalid_names_are_refused_naming_the_value_and_the_rule(name: str, problem: str) -> None:
    # Given a name that breaks the rule  When it is checked
    with pytest.raises(InvalidSchemaNameError) as caught:
        check_schema_name(name)
    # Then the message names the value (shortened when long), what is wrong, and the rule
    message = str(caught.value)
    assert message.startswith(f"schema name {repr(name)[:40]}")
    assert problem in message
    assert "a letter first, then letters, digits, '_' or '-' (ASCII), at most 64 characters" in message
    # And it is permanent, handled like an unknown schema by callers that do not tell them apart
    assert isinstance(caught.value, UnknownSchemaError) and isinstance(caught.value, PermanentApiError)
    assert not caught.value.retryable


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidSchemaNameError, match="it is int, not text"):
        check_schema_name(42)  # type: ignore[arg-type]


def test_a_very_long_name_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidSchemaNameError) as caught:
        check_schema_name("x" * 10_000)
    assert len(str(caught.value)) < 300 and "10000 characters long" in str(caught.value)


@pytest.mark.parametrize("name", ["a", "my-schema", "my_schema", "Customers2", "CDP-delete_v2", "a" * 64])
def test_valid_names_are_returned_as_they_are(name: str) -> None:
    assert check_schema_name(name) == name


# --- the client refuses before any request -----------------------------------------------------


class StaticAuth(AuthBase):
    def __call__(self, r: PreparedRequest) -> PreparedRequest:
        r.headers["Authorization"] = "Token static"
        return r


ENDPOINTS: list[tuple[str, Callable[[MonetateClient, str], Any]]] = [
    ("get_schema", lambda c, n: c.get_schema(n)),
    ("add_fields", lambda c, n: c.add_fields(n, {"f": {"data_type": "STRING"}})),
    ("post_rows", lambda c, n: c.post_rows(n, [{"id": "1"}])),
    ("post_body", lambda c, n: c.post_body(n, b'{"schema_rows":[]}')),
    ("get_record", lambda c, n: c.get_record(n, "1")),
    ("upload_history", lambda c, n: c.upload_history(n)),
]


@pytest.mark.parametrize(("endpoint", "call"), ENDPOINTS, ids=[e for e, _ in ENDPOINTS])
@pytest.mark.parametrize("name", ["..", ".", "a/b", "%2F", "?", "#", ""])
def test_every_endpoint_with_a_schema_in_its_path_refuses_before_sending(
    fake_http: Callable[..., Any], endpoint: str, call: Callable[[MonetateClient, str], Any], name: str
) -> None:
    # Given a client whose every request would be recorded
    session, transport = fake_http(lambda request: (200, {"meta": {"code": 200}, "data": {}}, {}))
    client = MonetateClient(data_api_base=BASE, auth=StaticAuth(), session=session, sleep=lambda s: None)
    # When the endpoint is called with an invalid schema name  Then it is refused and nothing is sent
    with pytest.raises(InvalidSchemaNameError):
        call(client, name)
    assert transport.sent == [] and client.stats["requests"] == 0


# --- the cache uses the same check ---------------------------------------------------------------


def test_the_schema_cache_refuses_an_invalid_name_without_fetching() -> None:
    # Given a cache whose fetch records the names it is asked for
    asked: list[str] = []

    def fetch(name: str) -> dict[str, Any]:
        asked.append(name)
        return {"name": name, "type": "attribute", "fields": {}}

    cache = SchemaCache(fetch)
    # When an invalid name is looked up or refreshed  Then the same error, and no fetch
    with pytest.raises(InvalidSchemaNameError, match=re.escape("'../schema'")):
        cache.get("../schema")
    with pytest.raises(InvalidSchemaNameError):
        cache.refresh("a/b")
    assert asked == [] and cache.fetches == 0
    # And a valid one is fetched as before
    assert cache.get("my-schema").name == "my-schema" and asked == ["my-schema"]
