"""The client reads what the reference says Monetate answers: the record GET's schema_rows, paged lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from monetate_ingest.monetate.client import MonetateClient
from monetate_ingest.monetate.exceptions import UnexpectedResponseError

from local.sandbox import MonetateSandbox

BASE = "https://api.monetate.net/api/data/v1/acme/production"
VISITS = {
    "name": "visits",
    "fields": {"customer_id": {"data_type": "STRING", "identifier": True}, "page": {"data_type": "STRING"}},
}


class NoAuth:
    def __call__(self, request: Any) -> Any:
        request.headers["Authorization"] = "Token static"
        return request


def scripted(fake_http: Callable[..., Any], *answers: Any) -> tuple[MonetateClient, Any]:
    queue = list(answers)
    session, transport = fake_http(lambda request: (200, queue.pop(0), {}))
    client = MonetateClient(data_api_base=BASE, auth=NoAuth(), session=session, sleep=lambda _s: None)
    return client, transport


# --- unhappy first ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [{"customer_id": "c1"}, {"schema_rows": {"customer_id": "c1"}}, {"schema_rows": ["c1"]}, [], None],
    ids=["the-record-itself", "rows-not-a-list", "row-not-an-object", "a-list", "nothing"],
)
def test_a_record_answer_not_shaped_as_the_reference_is_unexpected(
    fake_http: Callable[..., Any], data: Any
) -> None:
    # Given Monetate's data for the record GET in another shape than {"schema_rows": [...]}
    client, transport = scripted(fake_http, {"meta": {"code": 200}, "data": data})
    # When a record is read  Then UnexpectedResponseError (never a "record" made of the wrong thing)
    with pytest.raises(UnexpectedResponseError, match="schema_rows"):
        client.get_record("visits", "c1")
    assert len(transport.sent) == 1


@pytest.mark.parametrize(
    ("next_link", "reason"),
    [
        (f"{BASE}/schema/", "a page already read"),
        ("https://elsewhere.test/schema/?page=2", "another origin"),
        (42, "not a URL"),
    ],
)
def test_a_next_link_that_cannot_be_followed_fails_the_list(
    fake_http: Callable[..., Any], next_link: Any, reason: str
) -> None:
    client, transport = scripted(
        fake_http, {"meta": {"code": 200, "count": 1, "next": next_link}, "data": [{"name": "a"}]}
    )
    with pytest.raises(UnexpectedResponseError, match=reason):
        client.list_schemas()
    assert len(transport.sent) == 1


def test_an_endless_list_fails_instead_of_being_cut_silently(fake_http: Callable[..., Any]) -> None:
    pages = [
        {"meta": {"code": 200, "count": 1, "next": f"{BASE}/schema/?page={n + 2}"}, "data": [{"name": n}]}
        for n in range(1000)
    ]
    client, transport = scripted(fake_http, *pages)
    with pytest.raises(UnexpectedResponseError, match="more than 1000 pages"):
        client.list_schemas()
    assert len(transport.sent) == 1000


# --- against the sandbox, with the contract checks on ------------------------------------------------


def test_get_record_gives_every_row_that_matched(
    sandbox: MonetateSandbox, make_client: Callable[..., MonetateClient]
) -> None:
    # Given two visits of c1 and one of c2, the later c1 row without a page
    sandbox.add_schema(VISITS)
    client = make_client()
    client.post_rows("visits", [{"customer_id": "c1", "page": "/a"}, {"customer_id": "c2", "page": "/x"}])
    client.post_rows("visits", [{"customer_id": "c1"}])
    # When c1 is read  Then both rows, the latest first, every field present (null when absent)
    assert client.get_record("visits", "c1") == [
        {"customer_id": "c1", "page": None},
        {"customer_id": "c1", "page": "/a"},
    ]


def test_lists_are_read_across_pages(key_pair: Any, make_secret: Callable[..., str]) -> None:
    # Given a sandbox with 5 schemas in pages of 2
    from monetate_ingest.monetate.factory import build_client
    from monetate_ingest.settings import MonetateSettings

    with MonetateSandbox("acme", page_size=2) as sb:
        sb.register_key("api-123-example", key_pair.public_pem)
        for i in range(5):
            sb.add_schema({**VISITS, "name": f"v{i}"})
        settings = MonetateSettings(retailer="acme", secret_id="s", api_url=sb.url, token_ttl=3600)
        client = build_client(settings, secrets_fetch=lambda *_a, **_k: make_secret(), sleep=lambda _s: None)
        # When the schemas and the schema types (11, so 6 pages) are listed
        names = [s["name"] for s in client.list_schemas()]
        types = client.list_schema_types()
        # Then every item came back once, from requests that followed meta.next as given
        gets = [r for r in sb.requests if r.method == "GET" and r.path.endswith(("/schema/", "/schematype/"))]
    assert names == [f"v{i}" for i in range(5)]
    assert len(types) == 11 and len({t["name"] for t in types}) == 11
    assert len(gets) == 3 + 6
