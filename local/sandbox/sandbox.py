"""MonetateSandbox: the control surface tests and demos use."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from .api import Api
from .faults import FaultConfig
from .paging import DEFAULT_PAGE_SIZE
from .requestlog import LoggedRequest, RequestLog
from .rules import RuleError
from .server import SandboxHTTPServer, serve_in_thread
from .store import NotFound


class MonetateSandbox:
    """A local Monetate Auth + Data API on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(
        self,
        retailer: str = "acme",
        environment: str = "production",
        *,
        port: int = 0,
        name_failing_rows: bool = False,
        validate_rows: bool = True,
        page_size: int = DEFAULT_PAGE_SIZE,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retailer, self.environment = retailer, environment
        self._api = Api(
            retailer, environment, clock=clock, name_failing_rows=name_failing_rows, page_size=page_size
        )
        self._api.validate_rows = validate_rows
        self._log = RequestLog()
        self._monotonic = monotonic
        self._port = port
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> MonetateSandbox:
        """Bind and serve on a background thread; returns self."""
        if self._server is None:
            self._server = SandboxHTTPServer(("127.0.0.1", self._port), self._api, self._log, self._monotonic)
            self._thread = serve_in_thread(self._server)
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and every kept-alive connection."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MonetateSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (scheme and host, like MONETATE_API_URL)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def auth_url(self) -> str:
        """The token refresh URL."""
        return f"{self.url}/api/auth/v0/refresh/"

    @property
    def data_url(self) -> str:
        """The Data API base, ending in ``/{retailer}/{environment}``."""
        return f"{self.url}/api/data/v1/{self.retailer}/{self.environment}"

    # ---- keys and tokens -------------------------------------------------------------------

    def register_key(self, username: str, public_pem: str | bytes) -> None:
        """Register (or replace) the active public key of an API user."""
        self._api.authority.register_key(username, public_pem)

    def revoke_key(self, username: str) -> None:
        """Revoke the user's key: its JWTs and its tokens get 403 from now on."""
        self._api.authority.revoke_key(username)

    def expire_tokens(self) -> int:
        """End every live token now (early expiry); returns how many were live."""
        return self._api.authority.expire_tokens()

    # ---- data ------------------------------------------------------------------------------

    def add_schema(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a schema as POST /schema/ would, bypassing auth; ValueError on a rule."""
        try:
            schema, _ = self._api.store.create_schema(body)
        except RuleError as exc:
            raise ValueError(str(exc)) from exc
        return schema

    def schema(self, name: str) -> dict[str, Any]:
        """The stored schema; KeyError when absent."""
        try:
            return self._api.store.schema(name)
        except NotFound as exc:
            raise KeyError(name) from exc

    def rows(self, schema: str) -> list[dict[str, Any]]:
        """Copies of the stored rows of ``schema`` in order (after upserts); KeyError when absent."""
        try:
            return self._api.store.rows(schema)
        except NotFound as exc:
            raise KeyError(schema) from exc

    def uploads(self, schema: str) -> list[dict[str, Any]]:
        """Upload history of ``schema``, newest first; KeyError when absent."""
        try:
            return self._api.store.uploads(schema)
        except NotFound as exc:
            raise KeyError(schema) from exc

    # ---- knobs and observations ------------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        """The live fault configuration (mutate it or assign a new FaultConfig)."""
        return self._api.faults

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        self._api.faults = config

    @property
    def validate_rows(self) -> bool:
        """False accepts rows without type checks (benchmarks)."""
        return self._api.validate_rows

    @validate_rows.setter
    def validate_rows(self, value: bool) -> None:
        self._api.validate_rows = value

    @property
    def name_failing_rows(self) -> bool:
        """True adds a ``row`` index to row errors (real 400s do not reliably name it)."""
        return self._api.name_failing_rows

    @name_failing_rows.setter
    def name_failing_rows(self, value: bool) -> None:
        self._api.name_failing_rows = value

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every answered request so far, oldest first."""
        return self._log.snapshot()

    @property
    def counts(self) -> dict[str, int]:
        """Counters: requests, token_mints, data_posts, rows_stored, rejected_posts, record_gets,
        record_gets_limited, faults (missing keys are 0)."""
        keys = (
            "requests",
            "token_mints",
            "data_posts",
            "rows_stored",
            "rejected_posts",
            "record_gets",
            "record_gets_limited",
            "faults",
        )
        snapshot = self._api.count_snapshot()
        return {key: snapshot.get(key, 0) for key in keys}

    def reset(self) -> None:
        """Clear rows, uploads, the log, counters, faults and the GET window; keep schemas and keys."""
        self._api.store.clear_rows()
        self._log.clear()
        self._api.reset()
