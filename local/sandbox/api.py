"""Dispatch: a request in, an Answer out (no sockets here): routing, faults, auth, the limit."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from .auth import AuthError, Authority
from .endpoints import Endpoints, Request, check_query
from .faults import PROXY_PAGE, FaultConfig, FaultInjector
from .paging import DEFAULT_PAGE_SIZE
from .responses import Answer, envelope, error
from .routing import Route, route
from .rules import RuleError
from .store import NotFound, Store

__all__ = ["Api", "Request"]

RECORD_INTERVAL = 1.0


class Api:
    """The Monetate endpoints over a Store and an Authority, with faults and counters."""

    def __init__(
        self,
        retailer: str,
        environment: str,
        *,
        clock: Callable[[], float],
        name_failing_rows: bool,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self.retailer, self.environment = retailer, environment
        self.store = Store(clock)
        self.authority = Authority(clock)
        self.faults = FaultConfig()
        self.injector = FaultInjector()
        self.counts: Counter[str] = Counter()
        self.endpoints = Endpoints(self.store, self._count)
        self.endpoints.name_failing_rows = name_failing_rows
        self.endpoints.page_size = page_size
        self._lock = threading.Lock()
        self._last_record_get: float | None = None

    @property
    def validate_rows(self) -> bool:
        return self.endpoints.validate_rows

    @validate_rows.setter
    def validate_rows(self, value: bool) -> None:
        self.endpoints.validate_rows = value

    @property
    def name_failing_rows(self) -> bool:
        return self.endpoints.name_failing_rows

    @name_failing_rows.setter
    def name_failing_rows(self, value: bool) -> None:
        self.endpoints.name_failing_rows = value

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

    def route(self, path: str) -> Route | None:
        """The endpoint ``path`` names for this retailer and environment."""
        return route(path, self.retailer, self.environment)

    def dataset_for(self, path: str) -> dict[str, Any] | None:
        """The stored schema of the dataset ``path`` names (schema, data, upload routes), or None."""
        found = self.route(path)
        if found is None or found.name is None or found.kind not in ("schema", "data", "upload"):
            return None
        try:
            return self.store.schema(found.name)
        except NotFound:
            return None

    # ---- dispatch --------------------------------------------------------------------------

    def handle(self, request: Request) -> Answer:
        """Answer one request (faults first, then routing, auth and the endpoint)."""
        self._count("requests")
        found = self.route(request.path)
        if found is None:
            return error(404, "not found")
        if request.method not in found.methods:
            allowed = ", ".join(found.methods)
            answer = error(405, f"method {request.method} not allowed", allowed=list(found.methods))
            answer.headers["Allow"] = allowed
            return answer
        faulted = self._fault(found, request.method, request.body)
        if faulted is not None:
            return faulted
        if found.kind == "auth":
            return self._refresh(found, request)
        try:
            username = self.authority.check_token(request.authorization)
        except AuthError as exc:
            return self._auth_error(exc)
        answer = self._limited(found, request) or self._endpoint(found, request)
        answer.username = username
        return answer

    def _fault(self, found: Route, method: str, body: bytes = b"") -> Answer | None:
        config = self.faults
        if config.poison is not None and found.kind == "data" and method == "POST" and config.poison in body:
            self._count("faults")
            poisoned = error(503, "service unavailable (injected for this payload)")
            poisoned.origin = "fault"
            return poisoned
        fault = self.injector.decide(
            config, is_auth=found.kind == "auth", is_post=found.kind == "data" and method == "POST"
        )
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status is None:
            return None
        self._count("faults")
        answer = self._fault_answer(fault.status, config)
        answer.origin = "fault"
        return answer

    @staticmethod
    def _fault_answer(status: int, config: FaultConfig) -> Answer:
        if status == 502:
            return Answer(502, PROXY_PAGE, "text/html")
        if status == 429:
            headers = {} if config.retry_after is None else {"Retry-After": format(config.retry_after, "g")}
            return envelope(429, errors=[{"message": "too many requests"}], headers=headers)
        return error(500, "unknown error (injected)")

    @staticmethod
    def _auth_error(exc: AuthError) -> Answer:
        answer = error(exc.status, str(exc))
        answer.username = exc.username
        return answer

    # ---- auth ------------------------------------------------------------------------------

    def _refresh(self, found: Route, request: Request) -> Answer:
        try:
            minted = self.authority.mint(request.authorization, request.query.get("ttl"))
            check_query(found, request)
        except AuthError as exc:
            return self._auth_error(exc)
        except RuleError as exc:
            return envelope(400, errors=exc.errors)
        except ValueError as exc:
            return error(400, str(exc), field="ttl")
        self._count("token_mints")
        data = {
            "token": minted.token,
            "issued_at": minted.issued_at,
            "expires_in": minted.expires_in,
            "expires_at": minted.expires_at,
        }
        answer = envelope(200, data)
        answer.username = minted.username
        answer.recorded_body = json.dumps(
            {"meta": json.loads(answer.body)["meta"], "data": {**data, "token": "***"}}
        ).encode()
        return answer

    # ---- data API --------------------------------------------------------------------------

    def _limited(self, found: Route, request: Request) -> Answer | None:
        """The 429 of a single-record GET sooner than a second after the previous one."""
        if found.kind != "data" or request.method != "GET":
            return None
        with self._lock:
            last = self._last_record_get
            if last is not None and request.arrived - last < RECORD_INTERVAL:
                self.counts["record_gets_limited"] += 1
                return envelope(
                    429,
                    errors=[{"message": "at most 1 single-record GET per second"}],
                    headers={"Retry-After": "1"},
                )
            self._last_record_get = request.arrived
        return None

    def _endpoint(self, found: Route, request: Request) -> Answer:
        try:
            return self.endpoints.answer(found, request)
        except NotFound as exc:
            return error(404, str(exc))
        except RuleError as exc:
            return envelope(400, errors=exc.errors)
