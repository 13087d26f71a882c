"""The schema types GET /schematype/ describes."""

from __future__ import annotations

from typing import Any

from .rules import SCHEMA_TYPES


def _field(
    data_type: str,
    *,
    identifier: bool = False,
    unique_key: bool = False,
    event_time: bool = False,
    required: bool = False,
) -> dict[str, Any]:
    return {
        "data_type": data_type,
        "identifier": identifier,
        "unique_key": unique_key,
        "event_time": event_time,
        "required": required,
    }


_PRODUCT = {
    "id": _field("STRING", identifier=True, unique_key=True, required=True),
    **{
        name: _field("STRING", required=True)
        for name in ("title", "description", "link", "image_link", "product_type")
    },
    "price": _field("NUMBER", required=True),
    "sale_price": _field("NUMBER"),
    "availability": _field("STRING"),
    "availability_date": _field("DATETIME"),
    "brand": _field("STRING"),
    "adult": _field("BOOLEAN"),
    "quantity": _field("NUMBER"),
    "item_group_id": _field("STRING"),
}
_PRIVACY = {
    "customer_id": _field("STRING", identifier=True, required=True),
    "delete_request_time": _field("DATETIME", required=True),
}
SPECS: dict[str, dict[str, Any]] = {
    name: {"name": name, "fields": {"product": _PRODUCT, "customer_data_privacy": _PRIVACY}.get(name, {})}
    for name in SCHEMA_TYPES
}
