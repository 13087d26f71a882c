"""Build once: a value made on first use, at most once per container, safe across threads.

Handlers build their runtime (settings, clients, the secret's reader) on the first invocation, not
at import; ``Once`` is the one way to do that. ``OncePerKey`` does the same per key (one Monetate
client per settings).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Once(Generic[T]):
    """``build()`` called on the first :meth:`get`, never again (unless :meth:`reset`)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._built = False
        self._value: T | None = None

    def get(self) -> T:
        if not self._built:
            with self._lock:
                if not self._built:
                    self._value = self._build()
                    self._built = True
        return self._value  # type: ignore[return-value]

    @property
    def built(self) -> bool:
        return self._built

    def reset(self) -> None:
        """Forget the value: the next :meth:`get` builds it again."""
        with self._lock:
            self._built, self._value = False, None


class OncePerKey(Generic[K, T]):
    """``build(key)`` called once per key; concurrent callers of the same key share one build."""

    def __init__(self, build: Callable[[K], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._values: dict[K, T] = {}

    def get(self, key: K) -> T:
        try:
            return self._values[key]
        except KeyError:
            pass
        with self._lock:
            if key not in self._values:
                self._values[key] = self._build(key)
            return self._values[key]

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
