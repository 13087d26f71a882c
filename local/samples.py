"""Sample datasets shared by the tests, the benchmarks and the demo (one definition each)."""

from __future__ import annotations

import copy
from typing import Any

#: A customer dataset with one field of every Monetate type; ``customer_id`` is both the
#: identifier and the unique key, so re-posting a row replaces it.
CUSTOMER_FIELDS: dict[str, dict[str, Any]] = {
    "customer_id": {"data_type": "STRING", "identifier": True, "unique_key": True},
    "email": {"data_type": "STRING"},
    "points": {"data_type": "NUMBER"},
    "vip": {"data_type": "BOOLEAN"},
    "signup": {"data_type": "DATETIME"},
    "tags": {"data_type": "MULTI_STRING"},
}


def customers_schema(name: str = "customers") -> dict[str, Any]:
    """The body of ``POST /schema/`` for the customer dataset under ``name``."""
    return {"name": name, "type": "attribute", "fields": copy.deepcopy(CUSTOMER_FIELDS)}


#: An event dataset after the reference's ``purchase_event`` example: the purchase is the unique
#: key, the customer the identifier, the purchase time the event time.
PURCHASE_FIELDS: dict[str, dict[str, Any]] = {
    "purchase_id": {"data_type": "STRING", "unique_key": True},
    "customer_id": {"data_type": "STRING", "identifier": True},
    "purchase_time": {"data_type": "DATETIME", "event_time": True},
    "price": {"data_type": "NUMBER"},
}


def purchases_schema(name: str = "purchases") -> dict[str, Any]:
    """The body of ``POST /schema/`` for the purchase event dataset under ``name``."""
    return {"name": name, "type": "event", "fields": copy.deepcopy(PURCHASE_FIELDS)}
