"""boto3 clients made when first used, so a cold start pays only for the clients it needs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from monetate_ingest.once import Once


class LazyClient:
    """Stands in for a boto3 client and creates it on first use.

    ``LazyClient("sqs")`` makes ``boto3.client("sqs")`` from the default session; pass a callable
    to make it another way (the CLI's own session).
    """

    def __init__(self, service_or_factory: str | Callable[[], Any]) -> None:
        if isinstance(service_or_factory, str):
            service = service_or_factory

            def factory() -> Any:
                import boto3

                return boto3.client(service)  # type: ignore[call-overload]

            self.service: str | None = service
            self._once: Once[Any] = Once(factory)
        else:
            self.service = None
            self._once = Once(service_or_factory)

    @property
    def client(self) -> Any:
        return self._once.get()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not built yet while unpickling or in __init__
            raise AttributeError(name)
        return getattr(self.client, name)
