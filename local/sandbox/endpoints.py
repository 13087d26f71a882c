"""The Data API endpoints behind authentication: schemas, schema types, uploads, rows, records."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .paging import page_of
from .responses import Answer, envelope
from .routing import BOOLEAN_QUERY, Route
from .rules import RFC3339, RuleError
from .schematypes import SPECS
from .store import NotFound, Store

#: The keys of a data POST body (example_schemaDataRequest): the rows, and when they were sent.
BODY_KEYS = ("schema_rows", "_sent_time")


@dataclass(frozen=True)
class Request:
    """What the endpoints need from an HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: bytes
    arrived: float
    #: ``http://127.0.0.1:PORT``: where ``meta.next`` links point.
    base_url: str = "http://127.0.0.1"
    #: Query parameters given more than once (``query`` keeps the last).
    repeated: tuple[str, ...] = ()


class Endpoints:
    """Answers an authenticated request to a Data API route."""

    def __init__(self, store: Store, count: Callable[..., None]) -> None:
        self.store = store
        self.count = count
        self.validate_rows = True
        self.name_failing_rows = False
        self.page_size = 10

    def answer(self, route: Route, request: Request) -> Answer:
        """The endpoint's answer; RuleError (400) and NotFound (404) propagate."""
        check_query(route, request)
        flags = {k: request.query.get(k) == "true" for k in ("row_count", "latest_upload")}
        name, kind, method = route.name or "", route.kind, request.method
        if kind == "schemas" and method == "GET":
            items = self.store.schemas(**flags)
            if request.query.get("usable_in_accounts") == "true":
                items = [{**item, "usable_in_accounts": []} for item in items]  # no accounts here
            return self._list(items, request)
        if kind == "schemas":
            schema, warnings = self.store.create_schema(_json(request.body))
            return envelope(201, schema, warnings=warnings)
        if kind == "schema" and method == "GET":
            return envelope(200, self.store.schema(name, **flags))
        if kind == "schema":
            return envelope(200, self._patch(name, _json(request.body)))
        if kind == "schematypes":
            return self._list(copy.deepcopy(list(SPECS.values())), request)
        if kind == "schematype":
            if name not in SPECS:
                raise NotFound(f"no schema type named {name!r}")
            return envelope(200, copy.deepcopy(SPECS[name]))
        if kind == "upload":
            return self._list(self.store.uploads(name), request)
        if method == "POST":
            return self._post_rows(name, request)
        return self._records(name, request)

    def _list(self, items: list[Any], request: Request) -> Answer:
        chunk, meta = page_of(items, request.query, url=request.base_url + request.path, size=self.page_size)
        return envelope(200, chunk, meta=meta)

    def _patch(self, name: str, body: Any) -> dict[str, Any]:
        """PATCH answers "either fields or named_identifier, depending on which was supplied"."""
        patched = self.store.patch_schema(name, body)
        key = "fields" if isinstance(body, dict) and "fields" in body else "named_identifier"
        return {key: patched[key]}

    def _post_rows(self, name: str, request: Request) -> Answer:
        rules = self.store.rules(name)
        body = _json(request.body)
        rows = body.get("schema_rows") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            raise RuleError([{"field": "schema_rows", "message": 'the body must be {"schema_rows": [...]}'}])
        _check_body_keys(body)
        if self.validate_rows:
            errors = rules.errors(rows, name_rows=self.name_failing_rows)
            if errors:
                self.count("rejected_posts")
                raise RuleError(errors)
        count = self.store.upsert(name, rows, time.time())
        self.count("data_posts")
        self.count("rows_stored", count)
        # data echoes the rows as the reference's example_schemaDataResponse shows; a body of
        # only schema_rows is spliced in as sent (no re-encoding of a large body)
        echo = request.body.strip() if len(body) == 1 else json.dumps({"schema_rows": rows}).encode()
        meta = json.dumps({"code": 201, "errors": [], "warnings": []}, separators=(",", ":")).encode()
        return Answer(201, b'{"meta":' + meta + b',"data":' + echo + b"}")

    def _records(self, name: str, request: Request) -> Answer:
        self.count("record_gets")
        record_id = request.query.get("id")
        if not record_id:
            raise RuleError([{"field": "id", "message": "the id query parameter is required"}])
        rows = self.store.records(name, record_id)
        if not rows:
            raise NotFound(f"no record with id {record_id!r}")
        return envelope(200, {"schema_rows": rows})


def check_query(route: Route, request: Request) -> None:
    """RuleError (400) for a query parameter the reference does not declare here, one given twice,
    a boolean flag that is not ``true``/``false``, or a body on a GET."""
    declared = route.query(request.method)
    errors = [
        {"field": k, "message": f"query parameter {k!r} is given more than once"} for k in request.repeated
    ]
    if request.body and request.method == "GET":
        errors.append({"message": "a GET carries no body in the reference"})
    errors += [
        {
            "field": k,
            "message": f"unknown query parameter {k!r}; this endpoint takes "
            + (", ".join(declared) or "none"),
        }
        for k in request.query
        if k not in declared
    ]
    errors += [
        {"field": k, "message": f"{k} is a boolean: true or false, got {v!r}"}
        for k, v in request.query.items()
        if k in BOOLEAN_QUERY and v not in ("true", "false")
    ]
    if errors:
        raise RuleError(errors)


def _check_body_keys(body: dict[str, Any]) -> None:
    errors = [
        {"field": k, "message": f"{k!r} is not a key of a data POST ({', '.join(BODY_KEYS)})"}
        for k in body
        if k not in BODY_KEYS
    ]
    sent = body.get("_sent_time")
    if "_sent_time" in body and not (isinstance(sent, str) and RFC3339.fullmatch(sent)):
        errors.append(
            {
                "field": "_sent_time",
                "message": "_sent_time must be an ISO-8601 date-time "
                "with an offset, such as 2024-05-01T10:00:00Z",
            }
        )
    if errors:
        raise RuleError(errors)


def _json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse)
    except ValueError:
        raise RuleError([{"message": "the request body is not valid JSON"}]) from None


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
