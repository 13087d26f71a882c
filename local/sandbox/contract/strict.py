"""Strict objects: a key the reference does not name is a contract break, in requests and answers.

JSON Schema lets an object carry keys it does not list unless ``additionalProperties`` says
otherwise, and the reference never says. Read that way, nothing stops the client from sending
keys Monetate has never heard of, or the sandbox from answering fields the client then comes to
rely on. So every object schema that lists ``properties`` and says nothing about others refuses
them. ``allOf`` of objects (the only composition the reference uses for objects:
ResponseMetaPagination, example_schemaDataRequest) is merged into one object first, since each
branch would otherwise refuse the other's keys.
"""

from __future__ import annotations

import copy
from typing import Any

_SKIP = ("example", "examples")
_REF = "#/components/schemas/"


def make_strict(doc: dict[str, Any]) -> None:
    """Merge object ``allOf`` and close every listed object, in place."""
    schemas = doc.get("components", {}).get("schemas", {})
    _walk(doc, schemas)


def _walk(node: Any, schemas: dict[str, Any]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, schemas)
        return
    if not isinstance(node, dict):
        return
    if "allOf" in node:
        merged = _merge(node["allOf"], schemas)
        if merged is not None:
            del node["allOf"]
            for key, value in merged.items():
                node.setdefault(key, value)
    for key, value in node.items():
        if key not in _SKIP:
            _walk(value, schemas)
    if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
        node["additionalProperties"] = False


def _merge(parts: list[Any], schemas: dict[str, Any]) -> dict[str, Any] | None:
    """One object schema holding every part's properties and required keys; None if a part is
    not an object schema."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for part in parts:
        resolved = _resolve(part, schemas)
        if resolved is None:
            return None
        if "allOf" in resolved:
            inner = _merge(resolved["allOf"], schemas)
            if inner is None:
                return None
            resolved = {**resolved, **inner}
        if resolved.get("type", "object") != "object":
            return None
        properties.update(copy.deepcopy(resolved.get("properties", {})))
        required += [r for r in resolved.get("required", []) if r not in required]
    merged: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        merged["required"] = required
    return merged


def _resolve(part: Any, schemas: dict[str, Any]) -> dict[str, Any] | None:
    while isinstance(part, dict) and isinstance(part.get("$ref"), str):
        ref = part["$ref"]
        if not ref.startswith(_REF):
            return None
        part = schemas.get(ref[len(_REF) :])
    return part if isinstance(part, dict) else None
