"""PostRecords' functional tests: one moto server per module (its own, reset when the module ends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aws import MotoServer


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server
        server.reset()  # moto's in-process backends outlive the server: leave nothing behind
