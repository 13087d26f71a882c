"""ValidateRecord: API Gateway (REST, proxy) → one paced Monetate single-record GET, or the page.

Thin on purpose: routes, pacer and error mapping live in :mod:`monetate_ingest.spotcheck.app`.
Importing this module makes no network call and imports nothing heavy; the first invocation builds
the handler (settings, client and token come on the first lookup).
"""

from __future__ import annotations

from typing import Any

from monetate_ingest.once import Once


def _build() -> Any:
    from monetate_ingest.spotcheck.app import make_handler

    return make_handler()


#: The container's handler, built on the first invocation.
handler = Once(_build)


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result: dict[str, Any] = handler.get()(event, context)
    return result
