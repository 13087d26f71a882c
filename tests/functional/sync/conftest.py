"""The sync room's functional tests: one moto server per module, a fresh set of resources per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aws import LocalResources, MotoServer, provision


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server
        server.reset()  # moto's in-process backends outlive the server: leave nothing for the next module


@pytest.fixture
def resources(moto: MotoServer) -> LocalResources:
    moto.reset()
    return provision(moto, secret_value="{}")
