"""The reference's per-schema paths, generated for a real dataset.

Monetate's Data API page is "dynamically generated based on your schema": the published document
shows it for a made-up ``example_schema`` (path ``/data/example_schema/``, components
``example_schemaData``/``…DataRequest``/``…DataResponse`` with ``example_field1..5``). Here the
same path and components are generated for the dataset a request names, from the schema the
sandbox holds for it at that moment: one row property per field, typed as the example types
them, the identifier and the unique key required, other fields nullable ("All other fields are
optional and are marked as null if absent"). A dataset the sandbox does not know gets the
template with rows of any shape, at ``/data/{schema-name}/``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from .overlay import EXAMPLE_DATA_PATH

EXAMPLE = "example_schema"
_REF = "#/components/schemas/"
#: "Non-empty text without leading or trailing whitespace" (STRING; MULTI_STRING "as STRING").
_TEXT = {"type": "string", "pattern": r"^\S(?:[\s\S]*\S)?$"}
FIELD_TYPES: dict[str, dict[str, Any]] = {
    "STRING": _TEXT,
    "MULTI_STRING": _TEXT,
    "NUMBER": {"type": "number"},
    "DATETIME": {"type": "string", "format": "date-time"},
    "BOOLEAN": {"type": "boolean"},
    # In the data_type enum, not among the text's five types; no format given: a category id
    # (integer) or its text, as the sandbox accepts.
    "GOOGLE_PRODUCT_CATEGORY": {"oneOf": [{"type": "integer"}, _TEXT]},
}


def row_schema(dataset: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one row of ``dataset`` (a stored schema: ``{"fields": {...}}``)."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, spec in dataset["fields"].items():
        typed = copy.deepcopy(FIELD_TYPES.get(spec.get("data_type"), {}))
        if spec.get("identifier") or spec.get("unique_key"):
            required.append(name)
        else:
            typed["nullable"] = True
        properties[name] = typed
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def generate_data_path(doc: dict[str, Any], name: str | None, dataset: dict[str, Any] | None) -> None:
    """Replace the example path and components of ``doc`` (in place) with ``name``'s."""
    template = doc["paths"].pop(EXAMPLE_DATA_PATH)
    schemas = doc["components"]["schemas"]
    examples = {k: schemas.pop(k) for k in [k for k in schemas if k.startswith(EXAMPLE)]}
    known = name is not None and dataset is not None
    prefix = _component_prefix(name) if known else "dataset"
    for key, value in examples.items():
        schemas[prefix + key[len(EXAMPLE) :]] = _renamed(value, prefix)
    rows = row_schema(dataset) if known and dataset is not None else {"type": "object"}
    schemas[f"{prefix}Data"]["properties"]["schema_rows"]["items"] = rows
    item = _renamed(template, prefix)
    if known:
        doc["paths"][f"/data/{name}/"] = item
        return
    parameter = {"$ref": "#/components/parameters/schema-name"}
    item.setdefault("parameters", []).append(parameter)
    doc["paths"]["/data/{schema-name}/"] = item


def _component_prefix(name: str | None) -> str:
    """A component-name-safe prefix for a dataset name (names are letters, digits, ``_``, ``-``)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in name or "dataset")


def _renamed(value: Any, prefix: str) -> Any:
    text = json.dumps(value, default=str).replace(f'"{_REF}{EXAMPLE}', f'"{_REF}{prefix}')
    return json.loads(text)
