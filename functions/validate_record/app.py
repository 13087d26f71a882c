"""ValidateRecord: API Gateway (REST, proxy) → one paced Monetate single-record GET, or the page.

Thin on purpose: the routes, the pacer and the error mapping live in
:mod:`monetate_ingest.validator`. Importing this module makes no network call and does not build
the resolver; the first invocation does. Logger's ``log_event`` is forced off: the event carries
the caller's API key in its ``x-api-key`` header.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths

from monetate_ingest.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

_app: APIGatewayRestResolver | None = None
_app_lock = threading.Lock()


def get_app() -> APIGatewayRestResolver:
    """The container's resolver, built on first use."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                from monetate_ingest.validator import create_app

                _app = create_app()
    return _app


@logger.inject_lambda_context(
    log_event=False, correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from monetate_ingest.validator import METRICS

    try:
        return get_app().resolve(event, context)
    finally:
        METRICS.flush()
