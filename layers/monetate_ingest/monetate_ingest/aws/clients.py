"""boto3 clients made when first used, so a cold start pays only for the clients it needs."""

from __future__ import annotations

import threading
from typing import Any


class LazyClient:
    """Stands in for ``boto3.client(service)`` (default session) and creates it on first use."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3

                    self._client = boto3.client(self.service)  # type: ignore[call-overload]
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)
