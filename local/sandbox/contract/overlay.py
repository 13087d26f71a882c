"""Where the reference is silent or contradicts itself: what we follow, as edits to its documents.

Each function below is one decision, named in the README's sandbox section ("Where the reference
is silent or contradicts itself"). They edit the loaded YAML (never the files in
``docs/reference/monetate/``, which stay byte for byte what Monetate published).
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]

EXAMPLE_DATA_PATH = "/data/example_schema/"
VALIDATION_ERROR = {"$ref": "#/components/responses/400-Validation-Error"}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def operations(doc: Doc) -> list[dict[str, Any]]:
    """Every operation object of ``doc``."""
    return [op for item in doc.get("paths", {}).values() for m, op in item.items() if m in _METHODS]


def drop_non_media_types(doc: Doc) -> None:
    """The Data API's 201/200 answers list ``meta`` and ``data`` examples as if they were media
    types in ``content``; they are not: only ``type/subtype`` keys are kept."""
    for op in operations(doc):
        for response in op.get("responses", {}).values():
            content = response.get("content")
            if isinstance(content, dict):
                for key in [k for k in content if "/" not in k]:
                    del content[key]
    for response in doc.get("components", {}).get("responses", {}).values():
        content = response.get("content")
        if isinstance(content, dict):
            for key in [k for k in content if "/" not in k]:
                del content[key]


def every_operation_may_refuse_with_400(doc: Doc) -> None:
    """Some operations (the token refresh, the schema reads) declare no 400, though a request
    they do not allow (``ttl=5``, ``row_count=maybe``) must be refused: 400 Validation error,
    the reference's own ``400-Validation-Error`` response."""
    for op in operations(doc):
        op.setdefault("responses", {}).setdefault("400", dict(VALIDATION_ERROR))


def record_get_takes_an_id(doc: Doc) -> None:
    """The single-record GET names its ``id`` query parameter only in prose ("The record ID must
    be passed as a query parameter"): declared here, required, a non-empty string."""
    op = doc["paths"][EXAMPLE_DATA_PATH]["get"]
    op.setdefault("parameters", []).append(
        {
            "name": "id",
            "in": "query",
            "required": True,
            "description": "The record ID.",
            "schema": {"type": "string", "minLength": 1},
        }
    )


def field_attribute_required(doc: Doc) -> None:
    """The text lists ``required`` among the field attributes, and SchemaType's example uses it;
    the Field object omits it. We follow the text."""
    props = doc["components"]["schemas"]["Field"]["properties"]
    props["required"] = {"type": "boolean", "description": "Required when submitting records."}


def schema_name_allows_hyphens(doc: Doc) -> None:
    """The Schema name's text allows hyphens, its pattern does not: we follow the text."""
    doc["components"]["schemas"]["Schema"]["properties"]["name"]["pattern"] = "^[A-Za-z][A-Za-z0-9_-]*$"


def schema_read_flags_add_fields(doc: Doc) -> None:
    """``row_count``, ``latest_upload`` and ``usable_in_accounts`` "add a field" to each schema
    read, which the Schema object does not list: declared here. ``last_file_upload`` is a
    FileUpload (the query text's sketch says ``validation_error: ""``; the FileUpload object,
    which we follow, has ``validation_errors``/``validation_warnings`` lists), null before the
    first upload."""
    schemas = doc["components"]["schemas"]
    props = schemas["Schema"]["properties"]
    upload = {k: v for k, v in schemas["FileUpload"].items() if k != "example"}
    props["row_count"] = {"type": "integer", "readOnly": True}
    props["last_file_upload"] = {**upload, "nullable": True, "readOnly": True}
    names = ("name", "instance", "domain")
    account = {"type": "object", "properties": {k: {"type": "string"} for k in names}}
    props["usable_in_accounts"] = {"type": "array", "items": account, "readOnly": True}


def patch_is_fields_or_named_identifier(doc: Doc) -> None:
    """PATCH /schema/{name}/ "must only supply either fields or named_identifier" and "will
    return either fields or named_identifier", but its body and answer reference SchemaPatch
    alone (``fields`` required); SchemaNamedIdentifierPatch is defined and never used. We follow
    the description: one of the two, in the request and in the answer's ``data``."""
    either = {
        "oneOf": [
            {"$ref": "#/components/schemas/SchemaPatch"},
            {"$ref": "#/components/schemas/SchemaNamedIdentifierPatch"},
        ]
    }
    op = doc["paths"]["/schema/{schema-name}/"]["patch"]
    op["requestBody"]["content"]["application/json"]["schema"] = either
    doc["components"]["schemas"]["SchemaPatchResponse"]["properties"]["data"] = either


def patching_a_missing_schema_is_404(doc: Doc) -> None:
    """PATCH /schema/{name}/ declares no 404, though its GET does for a schema that "does not
    exist": patching one is 404 too, the reference's own ``404-Not-Found`` response."""
    op = doc["paths"]["/schema/{schema-name}/"]["patch"]
    op["responses"].setdefault("404", {"$ref": "#/components/responses/404-Not-Found"})


DATA_DECISIONS = (
    drop_non_media_types,
    every_operation_may_refuse_with_400,
    record_get_takes_an_id,
    field_attribute_required,
    schema_name_allows_hyphens,
    schema_read_flags_add_fields,
    patch_is_fields_or_named_identifier,
    patching_a_missing_schema_is_404,
)
AUTH_DECISIONS = (drop_non_media_types, every_operation_may_refuse_with_400)
METADATA_DECISIONS = (drop_non_media_types, every_operation_may_refuse_with_400)


def servers(doc: Doc, url: str) -> None:
    """The documents' servers are ``https://api.monetate.net/...{retailerShortname}/production``:
    a template without ``variables`` and a fixed environment, while MONETATE_API_URL and
    MONETATE_ENVIRONMENT are ours to set. The checker serves each document at the sandbox's own
    ``{api}/api/data/v1/{retailer}/{environment}``."""
    doc["servers"] = [{"url": url}]
