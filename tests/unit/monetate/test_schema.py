"""SchemaSpec parsing and the per-container SchemaCache."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from monetate_ingest.monetate.exceptions import NotFoundError, UnknownSchemaError
from monetate_ingest.monetate.schema import FieldSpec, SchemaCache, SchemaSpec

PURCHASE = {
    "name": "purchase_event",
    "type": "event",
    "fields": {
        "purchase_id": {"data_type": "STRING", "unique_key": True},
        "customer_id": {"data_type": "STRING", "identifier": True},
        "purchase_time": {"data_type": "DATETIME", "event_time": True},
        "product_price": {"data_type": "NUMBER", "required": True},
        "tags": {"data_type": "MULTI_STRING"},
    },
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeFetch:
    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.calls: list[str] = []

    def __call__(self, name: str) -> dict[str, Any]:
        self.calls.append(name)
        if name not in self.schemas:
            raise NotFoundError(f"no schema {name}", status=404)
        return self.schemas[name]


def test_from_api_reads_fields_and_roles() -> None:
    # Given the Data API's schema object
    # When it is parsed
    spec = SchemaSpec.from_api(PURCHASE)
    # Then the roles and types are exposed
    assert spec.name == "purchase_event" and spec.type == "event"
    assert spec.identifier == "customer_id"
    assert spec.unique_key == "purchase_id"
    assert spec.event_time == "purchase_time"
    assert spec.fields["product_price"] == FieldSpec("product_price", "NUMBER", required=True)
    assert spec.required_fields == ["purchase_id", "customer_id", "product_price"]


def test_from_api_unwraps_the_response_envelope() -> None:
    # Given a whole response {"meta":…, "data": schema}
    spec = SchemaSpec.from_api({"meta": {"code": 200}, "data": PURCHASE})
    # Then the schema inside is parsed
    assert spec.identifier == "customer_id"


def test_from_api_without_roles_has_none() -> None:
    spec = SchemaSpec.from_api({"name": "s", "type": "attribute", "fields": {"a": {"data_type": "string"}}})
    assert spec.identifier is None and spec.unique_key is None and spec.event_time is None
    assert spec.fields["a"].data_type == "STRING"


def test_cache_fetches_once_within_max_age_then_again() -> None:
    # Given a cache with a 300 s max age
    fetch, clock = FakeFetch({"purchase_event": PURCHASE}), FakeClock()
    cache = SchemaCache(fetch, max_age=300, clock=clock)
    # When the schema is read twice quickly, then after the max age
    first = cache.get("purchase_event")
    clock.now = 299
    second = cache.get("purchase_event")
    clock.now = 301
    cache.get("purchase_event")
    # Then the API was asked twice and the quick reads share one object
    assert first is second
    assert fetch.calls == ["purchase_event", "purchase_event"]


def test_refresh_forces_a_read() -> None:
    fetch = FakeFetch({"s": PURCHASE})
    cache = SchemaCache(fetch)
    cache.get("s")
    cache.refresh("s")
    assert fetch.calls == ["s", "s"]


def test_unknown_schema_is_a_clear_404_and_not_cached() -> None:
    # Given a schema Monetate does not have
    fetch = FakeFetch({})
    cache = SchemaCache(fetch)
    # When it is asked for twice
    for _ in range(2):
        with pytest.raises(UnknownSchemaError) as info:
            cache.get("nope")
        # Then each miss names it and says 404
        assert "'nope' does not exist in Monetate" in str(info.value)
        assert info.value.status == 404
    assert fetch.calls == ["nope", "nope"]
    # And once it exists it is found
    fetch.schemas["nope"] = PURCHASE
    assert cache.get("nope").identifier == "customer_id"


def test_cache_accepts_a_client_object() -> None:
    class Client:
        def get_schema(self, name: str) -> dict[str, Any]:
            return {**PURCHASE, "name": name}

    assert SchemaCache(Client()).get("x").name == "x"


def test_cache_is_thread_safe() -> None:
    # Given many threads reading the same schema at once
    fetch = FakeFetch({"s": PURCHASE})
    cache = SchemaCache(fetch)
    results: list[SchemaSpec] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("s"))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then it was fetched once and everyone got the same spec
    assert fetch.calls == ["s"]
    assert len({id(r) for r in results}) == 1
