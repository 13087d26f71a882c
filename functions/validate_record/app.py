"""ValidateRecord: API Gateway (REST, proxy) → one paced Monetate single-record GET, or the page.

Thin on purpose: routes, pacer and error mapping live in :mod:`monetate_ingest.spotcheck.app`.
Importing this module makes no network call and imports nothing heavy; the first invocation builds
the handler (settings, client and token come on the first lookup).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

_handler: Handler | None = None
_lock = threading.Lock()


def get_handler() -> Handler:
    """The container's handler, built once."""
    global _handler
    if _handler is None:
        with _lock:
            if _handler is None:
                from monetate_ingest.spotcheck.app import make_handler

                _handler = make_handler()
    return _handler


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return get_handler()(event, context)
