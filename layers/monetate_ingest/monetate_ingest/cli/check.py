"""``check``: read the secret, mint a token, show the API user, the token's expiry and the schemas.

The token itself is never printed: only when it expires.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from monetate_ingest.cli.common import Context, table


def run(ctx: Context) -> int:
    settings = ctx.settings()
    client = ctx.client(settings)
    tokens, credentials = client.tokens, client.credentials
    assert tokens is not None and credentials is not None  # set by build_client
    tokens.token()  # mints (and so proves the secret, the key and the clock); never shown
    user = credentials.get().username
    expires = token_expiry(tokens)
    schemas = client.list_schemas()

    ctx.print(f"API user:     {user}")
    ctx.print(f"secret:       {settings.monetate.secret_id}")
    ctx.print(f"Monetate API: {settings.monetate.data_api_base}")
    if expires is None:
        ctx.print(f"token:        minted (ttl {tokens.ttl} s asked; expiry not known)")
    else:
        left = max(0, round(expires - time.time()))
        ctx.print(f"token:        minted, expires {iso_utc(expires)} ({left} s left)")
    ctx.print(f"schemas:      {len(schemas)} visible")
    if schemas:
        rows = [(s.get("name", "?"), s.get("type") or "-", _field_count(s)) for s in schemas]
        ctx.print(table(("NAME", "TYPE", "FIELDS"), sorted(rows, key=lambda r: str(r[0]))))
    return 0


def token_expiry(tokens: Any) -> float | None:
    """When the current token expires (epoch seconds); never the token itself."""
    value = getattr(tokens, "expires_at", None)
    return float(value) if isinstance(value, (int, float)) else None


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _field_count(schema: dict[str, Any]) -> int:
    fields = schema.get("fields")
    return len(fields) if isinstance(fields, (dict, list)) else 0
