"""Bisection and delivery bookkeeping: what was stored, what is pending, whatever stopped it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from monetate_ingest.delivery.batching import Batch, Batcher
from monetate_ingest.delivery.bisection import PartialDeliveryError, deliver, post_with_bisection
from monetate_ingest.monetate.exceptions import (
    BadRequestError,
    KeyRevokedError,
    PermanentApiError,
    TransientApiError,
)


class Monetate:
    """Refuses (400) any POST holding a row with ``"bad": true``; raises ``fail_at[n]`` on POST n."""

    def __init__(self) -> None:
        self.bodies: list[list[dict[str, Any]]] = []
        self.deadlines: list[float | None] = []
        self.fail_at: dict[int, Exception] = {}

    def post_body(self, schema: str, body: bytes, *, deadline: float | None = None) -> object:
        rows = json.loads(body)["schema_rows"]
        self.bodies.append(rows)
        self.deadlines.append(deadline)
        if len(self.bodies) in self.fail_at:
            raise self.fail_at[len(self.bodies)]
        if any(r.get("bad") for r in rows):
            raise BadRequestError("400", status=400, meta_errors=[{"field": "bad", "message": "not allowed"}])
        return {}


class Plain:
    """A client without the ``deadline`` keyword (as older fakes and callers have it)."""

    def __init__(self) -> None:
        self.calls = 0

    def post_body(self, schema: str, body: bytes) -> object:
        self.calls += 1
        return {}


def batch(*rows: dict[str, Any]) -> Batch:
    batcher = Batcher(100, 100_000)
    for i, row in enumerate(rows, 1):
        batcher.add(i, row)
    last = batcher.flush()
    assert last is not None
    return last


def test_a_refused_batch_is_bisected_to_its_bad_rows_in_order() -> None:
    client = Monetate()
    result = deliver(client, "s", batch({"i": 1}, {"i": 2, "bad": True}, {"i": 3}, {"i": 4}))
    assert result.error is None and result.pending == []
    assert result.posted == [1, 3, 4] and [t for t, _ in result.refused] == [2]
    assert "bad: not allowed" in result.refused[0][1]


@pytest.mark.parametrize(
    "error",
    [
        TransientApiError("503", status=503),
        PermanentApiError("413", status=413),
        KeyRevokedError("403", status=403),
        RuntimeError("a bug"),
    ],
)
def test_whatever_stops_a_delivery_part_way_comes_back_with_what_was_stored(error: Exception) -> None:
    # Given a 400 that splits the batch, then a failure on the right half
    client = Monetate()
    client.fail_at[5] = error
    # When delivered
    result = deliver(client, "s", batch({"i": 1}, {"i": 2, "bad": True}, {"i": 3}, {"i": 4}))
    # Then the error is returned (not raised) with the stored rows and the rows still pending
    assert result.error is error
    assert result.posted == [1] and result.refused == [(2, result.refused[0][1])]
    assert result.pending_tags == [3, 4] and result.posts == 5


def test_post_with_bisection_raises_transient_failures_with_the_pending_rows() -> None:
    client = Monetate()
    client.fail_at[1] = TransientApiError("503", status=503)
    with pytest.raises(PartialDeliveryError) as caught:
        post_with_bisection(client, "s", batch({"i": 1}, {"i": 2}))
    assert caught.value.posted == [] and [b.lines for b in caught.value.pending] == [[1, 2]]


def test_post_with_bisection_raises_other_errors_as_they_were_raised() -> None:
    client = Monetate()
    client.fail_at[1] = KeyRevokedError("403", status=403)
    with pytest.raises(KeyRevokedError):
        post_with_bisection(client, "s", batch({"i": 1}))


def test_the_deadline_reaches_the_client_and_none_is_not_passed_to_clients_without_it() -> None:
    client = Monetate()
    deliver(client, "s", batch({"i": 1}), deadline=123.0)
    assert client.deadlines == [123.0]
    plain = Plain()
    assert post_with_bisection(plain, "s", batch({"i": 1})).posted == [1] and plain.calls == 1  # type: ignore[arg-type]
