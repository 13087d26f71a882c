"""Powertools ``logger``, ``metrics`` and ``tracer`` singletons shared by the whole package.

``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_METRICS_NAMESPACE`` override the defaults.
``tracer`` is created on first use: building a Powertools ``Tracer`` imports ``aws_xray_sdk``,
whose sampler builds a botocore client (~150 ms), which would blow the handler import budget.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics, Tracer

from monetate_ingest.once import Once

SERVICE = os.getenv("POWERTOOLS_SERVICE_NAME") or "monetate-ingest"
NAMESPACE = os.getenv("POWERTOOLS_METRICS_NAMESPACE") or "MonetateIngest"

F = TypeVar("F", bound=Callable[..., Any])


class LazyTracer:
    """A Powertools ``Tracer`` built on first use; decorators defer it to the first call."""

    def __init__(self, service: str) -> None:
        self._service = service
        self._tracer: Once[Tracer] = Once(lambda: Tracer(service=service))

    @property
    def real(self) -> Tracer:
        """The underlying Powertools ``Tracer`` (created now if needed)."""
        return self._tracer.get()

    def capture_lambda_handler(self, lambda_handler: F | None = None, **options: Any) -> Any:
        """Like ``Tracer.capture_lambda_handler``; the tracer is built on the first invocation."""
        if lambda_handler is None:
            return functools.partial(self.capture_lambda_handler, **options)
        return self._defer(lambda_handler, lambda t, fn: t.capture_lambda_handler(fn, **options))

    def capture_method(self, method: F | None = None, **options: Any) -> Any:
        """Like ``Tracer.capture_method``; plain functions build the tracer on their first call."""
        if method is None:
            return functools.partial(self.capture_method, **options)
        if (
            not inspect.isfunction(method)
            or inspect.iscoroutinefunction(method)
            or (inspect.isgeneratorfunction(method))
        ):
            return self.real.capture_method(method, **options)
        return self._defer(method, lambda t, fn: t.capture_method(fn, **options))

    def _defer(self, fn: F, decorate: Callable[[Tracer, F], Callable[..., Any]]) -> F:
        traced: list[Callable[..., Any]] = []

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not traced:
                traced.append(decorate(self.real, fn))
            return traced[0](*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.real, name)


logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = LazyTracer(SERVICE)


class MetricsSink(Protocol):
    """Where the package's counts go (Powertools metrics in Lambda, a fake in tests).

    ``schema``: the count also goes out with a ``schema`` dimension.
    """

    def count(self, name: str, value: float = 1, *, schema: str | None = None) -> None: ...
