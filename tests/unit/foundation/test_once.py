"""Build once: one build per container (or per key), whatever the threads."""

from __future__ import annotations

import threading
import time

import pytest
from monetate_ingest.once import Once, OncePerKey


def test_once_builds_on_first_use_only() -> None:
    calls: list[int] = []
    once = Once(lambda: calls.append(1) or "value")
    assert not once.built and calls == []
    assert once.get() == "value" and once.get() == "value"
    assert calls == [1] and once.built


def test_once_builds_once_under_concurrent_first_calls() -> None:
    # Given a slow build and 16 threads asking at the same moment
    calls: list[int] = []

    def build() -> object:
        calls.append(1)
        time.sleep(0.05)
        return object()

    once = Once(build)
    start = threading.Barrier(16)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(once.get())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then one build, one value for everyone
    assert len(calls) == 1 and len({id(v) for v in got}) == 1


def test_a_failed_build_is_tried_again_and_reset_rebuilds() -> None:
    attempts: list[int] = []

    def build() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("secret not readable yet")
        return len(attempts)

    once = Once(build)
    with pytest.raises(RuntimeError):
        once.get()
    assert once.get() == 2
    once.reset()
    assert once.get() == 3


def test_once_per_key_builds_each_key_once() -> None:
    built: list[str] = []
    per_key: OncePerKey[str, str] = OncePerKey(lambda k: built.append(k) or k.upper())
    assert [per_key.get(k) for k in ("a", "b", "a", "b")] == ["A", "B", "A", "B"]
    assert built == ["a", "b"]
