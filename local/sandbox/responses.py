"""The response envelope and raw HTTP answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class Answer:
    """A complete HTTP answer: status, body bytes, content type, extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    #: ``endpoint``, ``fault`` (the fault injector) or ``sandbox_error`` (see :mod:`.exchanges`).
    origin: Literal["endpoint", "fault", "sandbox_error"] = "endpoint"
    #: What the exchange log keeps instead of ``body`` (the token refresh: the token masked).
    recorded_body: bytes | None = None

    def header_items(self) -> list[tuple[str, str]]:
        """Every header the answer carries, as sent."""
        return [
            ("Content-Type", self.content_type),
            ("Content-Length", str(len(self.body))),
            *self.headers.items(),
        ]

    def encode(self, *, close: bool) -> bytes:
        """Status line, headers and body as one buffer (one write, no Nagle stall)."""
        lines = [
            f"HTTP/1.1 {self.status} {REASONS.get(self.status, 'Unknown')}",
            *(f"{k}: {v}" for k, v in self.header_items()),
        ]
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def envelope(
    status: int,
    data: Any = None,
    *,
    errors: list[dict[str, Any]] | None = None,
    warnings: list[dict[str, Any]] | None = None,
    meta: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """A JSON answer in the ``{"meta": ..., "data": ...}`` envelope."""
    body = {
        "meta": {"code": status, "errors": errors or [], "warnings": warnings or [], **(meta or {})},
        "data": data if data is not None else {},
    }
    return Answer(status, json.dumps(body, separators=(",", ":")).encode(), headers=dict(headers or {}))


def error(status: int, message: str, **extra: Any) -> Answer:
    """An envelope with one error message."""
    return envelope(status, errors=[{"message": message, **extra}])
