"""End-to-end fixtures: the embedded local stack, wired as AWS would wire it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.stack import LocalStack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    """moto + the Monetate sandbox + the real IngestFile handler, for one test module."""
    with LocalStack() as s:
        yield s
