"""Typed settings read once from the environment, one class per function, composed of shared groups.

``MonetateSettings`` (every function: where Monetate is, who we are, HTTP behaviour) and
``RowSettings`` (both writers: batch limits, coercion) and ``SyncSettings`` (both writers:
change-only sync) are the groups; ``IngestSettings``,
``RecordsSettings`` and ``SpotcheckSettings`` are what each handler reads. Each field names its
environment variable, parser and default once (``_var``). A missing or malformed variable raises
:class:`SettingsError` naming the variable; nothing here touches the network.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monetate_ingest.errors import SettingsError

UnknownColumnsPolicy = Literal["reject", "ignore", "add"]
SyncMode = Literal["changes", "all"]
S = TypeVar("S")

#: Defaults of the tunables; measured in ``bench/`` and documented in the README.
DEFAULT_BATCH_MAX_ROWS = 500
DEFAULT_BATCH_MAX_BYTES = 1_000_000
DEFAULT_POST_CONCURRENCY = 4


def _var(
    name: str,
    default: Any = None,
    parse: Callable[[str], Any] | None = None,
    *,
    required: bool = False,
    strip: bool = True,
) -> Any:
    """A settings field read from environment variable ``name`` (``required``: no default)."""
    meta = {"env": name, "parse": parse or _text, "required": required, "strip": strip}
    if required:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


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
    if "/" in raw or "?" in raw or " " in raw or raw in (".", ".."):
        raise ValueError("expected a single path segment without '/', '?' or spaces")
    return raw


def _policy(raw: str) -> str:
    value = raw.lower()
    if value not in ("reject", "ignore", "add"):
        raise ValueError("expected one of reject, ignore, add")
    return value


def _sync_mode(raw: str) -> str:
    value = raw.lower()
    if value not in ("changes", "all"):
        raise ValueError("expected changes or all")
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


def read_env(cls: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Build settings class ``cls`` from the environment; group fields are read recursively."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if "env" not in f.metadata:  # a group
            values[f.name] = read_env(f.type if isinstance(f.type, type) else _GROUPS[str(f.type)], env)
            continue
        var = f.metadata["env"]
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            if f.metadata["required"]:
                raise SettingsError(f"{var} is required but is not set")
            continue
        try:
            values[f.name] = f.metadata["parse"](raw.strip() if f.metadata["strip"] else raw)
        except ValueError as exc:
            raise SettingsError(f"{var}={raw!r} is not valid: {exc}") from None
    return cls(**values)


def env_name(cls: type[Any], name: str) -> str:
    """The environment variable behind field ``name`` of settings class ``cls``."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            return str(f.metadata["env"])
    raise KeyError(name)


@dataclass(frozen=True, kw_only=True)
class MonetateSettings:
    """Every function: where Monetate is, which API user, how HTTP calls behave."""

    retailer: str = _var("MONETATE_RETAILER", parse=_segment, required=True)
    secret_id: str = _var("MONETATE_SECRET_ID", required=True)
    api_url: str = _var("MONETATE_API_URL", "https://api.monetate.net", _url)
    environment: str = _var("MONETATE_ENVIRONMENT", "production", _segment)
    token_ttl: int = _var("MONETATE_TOKEN_TTL", 3600, _int_in(600, 43200))
    http_connect_timeout: float = _var("HTTP_CONNECT_TIMEOUT", 3.05, _float_in(0.1, 60))
    http_read_timeout: float = _var("HTTP_READ_TIMEOUT", 30.0, _float_in(0.1, 300))
    http_max_retries: int = _var("HTTP_MAX_RETRIES", 4, _int_in(0, 10))
    secret_max_age: int = _var("SECRET_MAX_AGE", 300, _int_in(0, 86_400))

    @property
    def data_api_base(self) -> str:
        """``{api}/api/data/v1/{retailer}/{environment}``."""
        return f"{self.api_url}/api/data/v1/{self.retailer}/{self.environment}"

    @property
    def auth_refresh_url(self) -> str:
        return f"{self.api_url}/api/auth/v0/refresh/"


@dataclass(frozen=True, kw_only=True)
class RowSettings:
    """Both writers: how rows are coerced and batched into POSTs."""

    batch_max_rows: int = _var("BATCH_MAX_ROWS", DEFAULT_BATCH_MAX_ROWS, _int_in(1, 10_000))
    batch_max_bytes: int = _var("BATCH_MAX_BYTES", DEFAULT_BATCH_MAX_BYTES, _int_in(1_000, 50_000_000))
    unknown_columns: UnknownColumnsPolicy = _var("UNKNOWN_COLUMNS", "reject", _policy)
    naive_datetime_tz: str = _var("NAIVE_DATETIME_TZ", "UTC", _timezone)


@dataclass(frozen=True, kw_only=True)
class SyncSettings:
    """Both writers: change-only sync (``monetate_ingest.sync``). ``changes`` needs the ledger table."""

    mode: SyncMode = _var("SYNC_MODE", "all", _sync_mode)
    full_every_days: int = _var("SYNC_FULL_EVERY_DAYS", 7, _int_in(1, 365))
    ledger_table: str | None = _var("SYNC_LEDGER_TABLE")

    def __post_init__(self) -> None:
        if self.mode == "changes" and not self.ledger_table:
            raise SettingsError("SYNC_MODE=changes needs SYNC_LEDGER_TABLE, which is not set")

    @property
    def enabled(self) -> bool:
        return self.mode == "changes"


@dataclass(frozen=True, kw_only=True)
class IngestSettings:
    """IngestFile (and the CLI's ``push``). ``records_queue_url`` and ``idempotency_table`` are
    required by the function (:meth:`for_function`); a local push parks to a file instead."""

    monetate: MonetateSettings
    rows: RowSettings = field(default_factory=RowSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    records_queue_url: str | None = _var("RECORDS_QUEUE_URL")
    idempotency_table: str | None = _var("IDEMPOTENCY_TABLE")
    post_concurrency: int = _var("POST_CONCURRENCY", DEFAULT_POST_CONCURRENCY, _int_in(1, 64))
    csv_delimiter: str = _var("CSV_DELIMITER", ",", _delimiter, strip=False)
    max_decompressed_bytes: int = _var("MAX_DECOMPRESSED_BYTES", 20 * 1024**3, _int_in(1_000, 1 << 50))
    max_compression_ratio: int = _var("MAX_COMPRESSION_RATIO", 200, _int_in(2, 100_000))
    #: A CSV field longer than this (UTF-8 bytes) rejects its row (``formats.readers``).
    max_field_bytes: int = _var("MAX_FIELD_BYTES", 1024 * 1024, _int_in(1_024, 256 * 1024 * 1024))
    deadline_margin_seconds: float = _var("DEADLINE_MARGIN_SECONDS", 60.0, _float_in(1, 900))
    event_bus_name: str | None = _var("EVENT_BUS_NAME")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        return read_env(cls, environ)

    @classmethod
    def for_function(cls, environ: Mapping[str, str] | None = None) -> IngestSettings:
        """The function's settings: the records queue and the idempotency table are required."""
        return _require(cls.from_env(environ), "records_queue_url", "idempotency_table")


@dataclass(frozen=True, kw_only=True)
class RecordsSettings:
    """PostRecords."""

    monetate: MonetateSettings
    rows: RowSettings = field(default_factory=RowSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    records_dlq_url: str = _var("RECORDS_DLQ_URL", required=True)
    idempotency_table: str = _var("IDEMPOTENCY_TABLE", required=True)
    deadline_margin_seconds: float = _var("RECORDS_DEADLINE_MARGIN_SECONDS", 10.0, _float_in(1, 900))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RecordsSettings:
        return read_env(cls, environ)


@dataclass(frozen=True, kw_only=True)
class SpotcheckSettings:
    """ValidateRecord."""

    monetate: MonetateSettings
    validator_max_wait: float = _var("VALIDATOR_MAX_WAIT", 2.0, _float_in(0, 10))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpotcheckSettings:
        return read_env(cls, environ)


def monetate_from_env(environ: Mapping[str, str] | None = None) -> MonetateSettings:
    """Only the Monetate group (the CLI's commands other than ``push``)."""
    return read_env(MonetateSettings, environ)


def _require(settings: S, *names: str) -> S:
    """Fail with the variable's name if one of these optional settings is unset."""
    for name in names:
        if not getattr(settings, name):
            var = env_name(type(settings), name)
            raise SettingsError(f"{var} is required by this function but is not set")
    return settings


_GROUPS: dict[str, type[Any]] = {
    "MonetateSettings": MonetateSettings,
    "RowSettings": RowSettings,
    "SyncSettings": SyncSettings,
}
