"""Routing and endpoint logic: a request in, an Answer out (no sockets here)."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .auth import AuthError, Authority
from .faults import PROXY_PAGE, FaultConfig, FaultInjector
from .responses import Answer, envelope, error
from .rules import RuleError
from .schematypes import SPECS
from .store import NotFound, Store

AUTH_PATH = "/api/auth/v0/refresh/"
DATA_PREFIX = "/api/data/v1/"
RECORD_INTERVAL = 1.0


@dataclass(frozen=True)
class Request:
    """What the endpoints need from an HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    body: bytes
    arrived: float


@dataclass(frozen=True)
class _Route:
    kind: str  # auth, schemas, schema, schematypes, schematype, upload, data
    name: str | None
    methods: tuple[str, ...]


class Api:
    """The Monetate endpoints over a Store and an Authority, with faults and counters."""

    def __init__(self, retailer: str, environment: str, *, clock: Callable[[], float],
                 name_failing_rows: bool) -> None:
        self.retailer, self.environment = retailer, environment
        self.store = Store(clock)
        self.authority = Authority(clock)
        self.faults = FaultConfig()
        self.injector = FaultInjector()
        self.validate_rows = True
        self.name_failing_rows = name_failing_rows
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._last_record_get: float | None = None

    def reset(self) -> None:
        """Zero counters and faults; forget the previous single-record GET."""
        with self._lock:
            self.counts.clear()
            self._last_record_get = None
        self.faults = FaultConfig()

    def count_snapshot(self) -> dict[str, int]:
        """A copy of the counters."""
        with self._lock:
            return dict(self.counts)

    def _count(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[key] += amount

    # ---- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        """Answer one request (faults first, then routing, auth and the endpoint)."""
        self._count("requests")
        route = self._route(request.path)
        if route is None:
            return error(404, "not found")
        if request.method not in route.methods:
            return error(405, f"method {request.method} not allowed", allowed=list(route.methods))
        faulted = self._fault(route, request.method, request.body)
        if faulted is not None:
            return faulted
        if route.kind == "auth":
            return self._refresh(request)
        try:
            username = self.authority.check_token(request.authorization)
        except AuthError as exc:
            return self._auth_error(exc)
        answer = self._endpoint(route, request)
        answer.username = username
        return answer

    def _route(self, path: str) -> _Route | None:
        if path == AUTH_PATH:
            return _Route("auth", None, ("GET",))
        if not path.startswith(DATA_PREFIX) or not path.endswith("/"):
            return None
        parts = path[len(DATA_PREFIX):-1].split("/")
        if len(parts) < 3 or "" in parts or parts[:2] != [self.retailer, self.environment]:
            return None
        rest = parts[2:]
        if len(rest) == 1:
            return {
                "schema": _Route("schemas", None, ("GET", "POST")),
                "schematype": _Route("schematypes", None, ("GET",)),
            }.get(rest[0])
        if len(rest) == 2:
            methods = {"schema": ("GET", "PATCH"), "schematype": ("GET",), "upload": ("GET",),
                       "data": ("GET", "POST")}.get(rest[0])
            return _Route(rest[0], rest[1], methods) if methods else None
        return None

    def _fault(self, route: _Route, method: str, body: bytes = b"") -> Answer | None:
        config = self.faults
        if config.poison is not None and route.kind == "data" and method == "POST" and config.poison in body:
            self._count("faults")
            return error(503, "service unavailable (injected for this payload)")
        fault = self.injector.decide(
            config, is_auth=route.kind == "auth", is_post=route.kind == "data" and method == "POST"
        )
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is None:
            return None
        self._count("faults")
        if fault.status == 502:
            return Answer(502, PROXY_PAGE, "text/html")
        if fault.status == 429:
            headers = {} if config.retry_after is None else {"Retry-After": format(config.retry_after, "g")}
            return envelope(429, errors=[{"message": "too many requests"}], headers=headers)
        return error(500, "unknown error (injected)")

    @staticmethod
    def _auth_error(exc: AuthError) -> Answer:
        answer = error(exc.status, str(exc))
        answer.username = exc.username
        return answer

    # ---- auth ------------------------------------------------------------------------------

    def _refresh(self, request: Request) -> Answer:
        try:
            minted = self.authority.mint(request.authorization, request.query.get("ttl"))
        except AuthError as exc:
            return self._auth_error(exc)
        except ValueError as exc:
            return error(400, str(exc), field="ttl")
        self._count("token_mints")
        answer = envelope(200, {
            "token": minted.token, "issued_at": minted.issued_at,
            "expires_in": minted.expires_in, "expires_at": minted.expires_at,
        })
        answer.username = minted.username
        return answer

    # ---- data API --------------------------------------------------------------------------

    def _endpoint(self, route: _Route, request: Request) -> Answer:
        try:
            return self._dispatch(route, request)
        except NotFound as exc:
            return error(404, str(exc))
        except RuleError as exc:
            return envelope(400, errors=exc.errors)

    def _dispatch(self, route: _Route, request: Request) -> Answer:
        flags = {"row_count": _flag(request.query, "row_count"),
                 "latest_upload": _flag(request.query, "latest_upload")}
        name = route.name or ""
        if route.kind == "schemas" and request.method == "GET":
            items = self.store.schemas(**flags)
            return envelope(200, items, meta=_page(len(items)))
        if route.kind == "schemas":
            schema, warnings = self.store.create_schema(_json(request.body))
            return envelope(201, schema, warnings=warnings)
        if route.kind == "schema" and request.method == "GET":
            return envelope(200, self.store.schema(name, **flags))
        if route.kind == "schema":
            return envelope(200, self.store.patch_schema(name, _json(request.body)))
        if route.kind == "schematypes":
            return envelope(200, copy.deepcopy(list(SPECS.values())), meta=_page(len(SPECS)))
        if route.kind == "schematype":
            if name not in SPECS:
                raise NotFound(f"no schema type named {name!r}")
            return envelope(200, copy.deepcopy(SPECS[name]))
        if route.kind == "upload":
            uploads = self.store.uploads(name)
            return envelope(200, uploads, meta=_page(len(uploads)))
        if request.method == "POST":
            return self._post_rows(name, request)
        return self._get_record(name, request)

    def _post_rows(self, name: str, request: Request) -> Answer:
        rules = self.store.rules(name)
        body = _json(request.body)
        rows = body.get("schema_rows") if isinstance(body, dict) else None
        if not isinstance(rows, list):
            message = 'the body must be {"schema_rows": [...]}'
            raise RuleError([{"field": "schema_rows", "message": message}])
        if self.validate_rows:
            errors = rules.errors(rows, name_rows=self.name_failing_rows)
            if errors:
                self._count("rejected_posts")
                raise RuleError(errors)
        count = self.store.upsert(name, rows, time.time())
        self._count("data_posts")
        self._count("rows_stored", count)
        # data echoes the posted body as the reference's response shows, without re-encoding it
        head = json.dumps({"code": 201, "errors": [], "warnings": [], "count": count}, separators=(",", ":"))
        return Answer(201, b'{"meta":' + head.encode() + b',"data":' + request.body.strip() + b"}")

    def _get_record(self, name: str, request: Request) -> Answer:
        with self._lock:
            last = self._last_record_get
            if last is not None and request.arrived - last < RECORD_INTERVAL:
                limited = True
            else:
                limited, self._last_record_get = False, request.arrived
        if limited:
            self._count("record_gets_limited")
            return envelope(429, errors=[{"message": "at most 1 single-record GET per second"}],
                            headers={"Retry-After": "1"})
        self._count("record_gets")
        record_id = request.query.get("id")
        if not record_id:
            raise RuleError([{"field": "id", "message": "the id query parameter is required"}])
        return envelope(200, self.store.record(name, record_id))


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise RuleError([{"message": "the request body is not valid JSON"}]) from None


def _flag(query: dict[str, str], key: str) -> bool:
    return query.get(key, "").lower() in ("1", "true", "yes")


def _page(count: int) -> dict[str, Any]:
    return {"count": count, "next": None, "previous": None}
