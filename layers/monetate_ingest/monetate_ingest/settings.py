"""Typed settings read once from the environment.

A missing or malformed variable raises :class:`SettingsError` naming the variable and what was
wrong; nothing here touches the network. Handlers call :func:`load_settings` on first use, not at
import time, so a bad deployment fails with a readable message rather than a ``KeyError``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monetate_ingest.errors import SettingsError

UnknownColumnsPolicy = Literal["reject", "ignore", "add"]
T = TypeVar("T")

#: Defaults of the tunables; measured in ``bench/`` and documented in the README.
DEFAULT_BATCH_MAX_ROWS = 500
DEFAULT_BATCH_MAX_BYTES = 1_000_000
DEFAULT_POST_CONCURRENCY = 4


@dataclass(frozen=True)
class Settings:
    """Everything configurable, validated. Field docs are in the README's configuration table."""

    retailer: str
    secret_id: str
    api_url: str = "https://api.monetate.net"
    environment: str = "production"
    token_ttl: int = 3600
    records_queue_url: str | None = None
    records_dlq_url: str | None = None
    idempotency_table: str | None = None
    batch_max_rows: int = DEFAULT_BATCH_MAX_ROWS
    batch_max_bytes: int = DEFAULT_BATCH_MAX_BYTES
    post_concurrency: int = DEFAULT_POST_CONCURRENCY
    unknown_columns: UnknownColumnsPolicy = "reject"
    csv_delimiter: str = ","
    naive_datetime_tz: str = "UTC"
    http_connect_timeout: float = 3.05
    http_read_timeout: float = 30.0
    http_max_retries: int = 4
    secret_max_age: int = 300
    max_decompressed_bytes: int = 20 * 1024**3
    max_compression_ratio: int = 200
    deadline_margin_seconds: float = 60.0
    validator_max_wait: float = 2.0
    event_bus_name: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def data_api_base(self) -> str:
        """``{api}/api/data/v1/{retailer}/{environment}``."""
        return f"{self.api_url}/api/data/v1/{self.retailer}/{self.environment}"

    @property
    def auth_refresh_url(self) -> str:
        return f"{self.api_url}/api/auth/v0/refresh/"

    def require(self, *names: str) -> Settings:
        """Fail with the variable's name if one of these optional settings is unset."""
        for name in names:
            if not getattr(self, name):
                raise SettingsError(f"{_ENV_NAME[name]} is required by this function but is not set")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            var = _ENV_NAME[f.name]
            raw = env.get(var)
            if raw is None or raw.strip() == "":
                if f.name in ("retailer", "secret_id"):
                    raise SettingsError(f"{var} is required but is not set")
                continue
            parser = _PARSERS.get(f.name, _text)
            try:
                values[f.name] = parser(raw.strip() if f.name != "csv_delimiter" else raw)
            except ValueError as exc:
                raise SettingsError(f"{var}={raw!r} is not valid: {exc}") from None
        return cls(**values)


def _text(raw: str) -> str:
    return raw


def _int_in(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}")
        return value

    return parse


def _float_in(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError("expected a number of seconds") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a number from {lo:g} to {hi:g}")
        return value

    return parse


def _url(raw: str) -> str:
    parsed = urlparse(raw)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.path not in ("", "/"):
        raise ValueError("expected scheme and host only, like https://api.monetate.net")
    return raw.rstrip("/")


def _segment(raw: str) -> str:
    if "/" in raw or "?" in raw or " " in raw:
        raise ValueError("expected a single path segment without '/', '?' or spaces")
    return raw


def _policy(raw: str) -> str:
    value = raw.lower()
    if value not in ("reject", "ignore", "add"):
        raise ValueError("expected one of reject, ignore, add")
    return value


def _delimiter(raw: str) -> str:
    value = "\t" if raw in ("\\t", "tab", "TAB") else raw
    if len(value) != 1 or value in ('"', "\r", "\n"):
        raise ValueError("expected one character (use \\t for a tab), not a quote or newline")
    return value


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone such as UTC or America/New_York") from None
    return raw


_ENV_NAME = {
    "retailer": "MONETATE_RETAILER",
    "secret_id": "MONETATE_SECRET_ID",
    "api_url": "MONETATE_API_URL",
    "environment": "MONETATE_ENVIRONMENT",
    "token_ttl": "MONETATE_TOKEN_TTL",
    "records_queue_url": "RECORDS_QUEUE_URL",
    "records_dlq_url": "RECORDS_DLQ_URL",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "batch_max_rows": "BATCH_MAX_ROWS",
    "batch_max_bytes": "BATCH_MAX_BYTES",
    "post_concurrency": "POST_CONCURRENCY",
    "unknown_columns": "UNKNOWN_COLUMNS",
    "csv_delimiter": "CSV_DELIMITER",
    "naive_datetime_tz": "NAIVE_DATETIME_TZ",
    "http_connect_timeout": "HTTP_CONNECT_TIMEOUT",
    "http_read_timeout": "HTTP_READ_TIMEOUT",
    "http_max_retries": "HTTP_MAX_RETRIES",
    "secret_max_age": "SECRET_MAX_AGE",
    "max_decompressed_bytes": "MAX_DECOMPRESSED_BYTES",
    "max_compression_ratio": "MAX_COMPRESSION_RATIO",
    "deadline_margin_seconds": "DEADLINE_MARGIN_SECONDS",
    "validator_max_wait": "VALIDATOR_MAX_WAIT",
    "event_bus_name": "EVENT_BUS_NAME",
}

_PARSERS: dict[str, Callable[[str], Any]] = {
    "retailer": _segment,
    "environment": _segment,
    "api_url": _url,
    "token_ttl": _int_in(600, 43200),
    "batch_max_rows": _int_in(1, 10_000),
    "batch_max_bytes": _int_in(1_000, 50_000_000),
    "post_concurrency": _int_in(1, 64),
    "unknown_columns": _policy,
    "csv_delimiter": _delimiter,
    "naive_datetime_tz": _timezone,
    "http_connect_timeout": _float_in(0.1, 60),
    "http_read_timeout": _float_in(0.1, 300),
    "http_max_retries": _int_in(0, 10),
    "secret_max_age": _int_in(0, 86_400),
    "max_decompressed_bytes": _int_in(1_000, 1 << 50),
    "max_compression_ratio": _int_in(2, 100_000),
    "deadline_margin_seconds": _float_in(1, 900),
    "validator_max_wait": _float_in(0, 10),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment (call once per container, on first use)."""
    return Settings.from_env(environ)
