"""Fakes for PostRecords' unit tests: Monetate, schemas, the DLQ, the idempotency table, a clock."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from monetate_ingest.delivery.envelope import build_envelope
from monetate_ingest.monetate.exceptions import BadRequestError, DeadlineExceededError, UnknownSchemaError
from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.records.dead_letters import DeadLetter, attributes
from monetate_ingest.records.deadline import Budget
from monetate_ingest.records.handler import BatchOutcome, PostRecordsDeps, process_messages
from monetate_ingest.records.idempotency import ClaimState
from monetate_ingest.records.process import Incoming
from monetate_ingest.settings import RowSettings

PURCHASES = SchemaSpec.from_api(
    {
        "name": "purchases",
        "type": "event",
        "fields": {
            "purchase_id": {"data_type": "STRING", "unique_key": True},
            "customer_id": {"data_type": "STRING", "identifier": True},
            "price": {"data_type": "NUMBER"},
        },
    }
)
VISITS = SchemaSpec.from_api(
    {"name": "visits", "fields": {"customer_id": {"data_type": "STRING", "identifier": True}}}
)


class FakeClock:
    """A ``time.monotonic`` that moves only when told."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeMonetate:
    """Stores rows, like the Data API, with faults a test can choose:

    * a row whose ``customer_id`` starts with "refuse" makes its POST a 400 (Monetate's validation);
    * ``fail_when(rule, exc)``: a POST for which ``rule(schema, rows)`` holds raises ``exc`` (after
      the client's retries, as the real client raises it);
    * ``fail_on[n]`` / ``fail_from = (n, exc)``: the n-th POST, or every POST from the n-th on;
    * ``latency``: each POST advances ``clock`` by that much; with ``deadline=`` a POST that cannot
      end in time raises :class:`DeadlineExceededError` as the client does.
    """

    def __init__(self, clock: FakeClock | None = None, latency: float = 0.0) -> None:
        self.clock = clock or FakeClock()
        self.latency = latency
        self.posts: list[tuple[str, list[dict[str, Any]]]] = []
        self.started: list[float] = []
        self.ended: list[float] = []
        self.deadlines: list[float | None] = []
        self.stored: list[tuple[str, dict[str, Any]]] = []
        self.fail_on: dict[int, Exception] = {}
        self.fail_from: tuple[int, Exception] | None = None
        self.rules: list[tuple[Callable[[str, list[dict[str, Any]]], bool], Exception]] = []

    def fail_when(self, rule: Callable[[str, list[dict[str, Any]]], bool], exc: Exception) -> None:
        self.rules.append((rule, exc))

    def post_body(self, schema: str, body: bytes, *, deadline: float | None = None) -> dict[str, Any]:
        if deadline is not None and self.clock() >= deadline:
            raise DeadlineExceededError("no time left before sending; rows left for the next invocation")
        rows = json.loads(body)["schema_rows"]
        self.posts.append((schema, rows))
        self.deadlines.append(deadline)
        self.started.append(self.clock())
        try:
            return self._answer(schema, rows, deadline)
        finally:
            self.ended.append(self.clock())

    def _answer(self, schema: str, rows: list[dict[str, Any]], deadline: float | None) -> dict[str, Any]:
        if deadline is not None and self.clock() + self.latency > deadline:
            self.clock.advance(max(deadline - self.clock(), 0.5))  # the read times out at the deadline
            raise DeadlineExceededError("the POST could not finish before the deadline")
        if self.latency:
            self.clock.advance(self.latency)
        n = len(self.posts)
        if n in self.fail_on:
            raise self.fail_on[n]
        if self.fail_from is not None and n >= self.fail_from[0]:
            raise self.fail_from[1]
        for rule, exc in self.rules:
            if rule(schema, rows):
                raise exc
        if any(str(r.get("customer_id", "")).startswith("refuse") for r in rows):
            raise BadRequestError(
                "invalid rows", status=400, meta_errors=[{"message": "customer is blocked"}]
            )
        self.stored.extend((schema, r) for r in rows)
        return {"meta": {"code": 200}}

    def stored_ids(self, key: str = "purchase_id") -> list[Any]:
        return [r.get(key) for _, r in self.stored]


class FakeSchemas:
    def __init__(self, *specs: SchemaSpec) -> None:
        self.specs = {s.name: s for s in specs}
        self.errors: dict[str, Exception] = {}
        self.lookups: list[str] = []
        self.refreshed: list[str] = []

    def get(self, name: str) -> SchemaSpec:
        self.lookups.append(name)
        if name in self.errors:
            raise self.errors[name]
        if name not in self.specs:
            raise UnknownSchemaError(f"schema {name!r} does not exist in Monetate", status=404)
        return self.specs[name]

    def refresh(self, name: str) -> SchemaSpec:
        self.refreshed.append(name)
        return self.get(name)


class FakeDeadLetters:
    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []
        self.fail = False

    def send(self, letter: DeadLetter) -> None:
        if self.fail:
            raise ConnectionError("DLQ unreachable")
        attributes(letter)  # must be computable for every letter
        self.sent.append(letter)

    def by_id(self, message_id: str) -> DeadLetter:
        return next(letter for letter in self.sent if letter.message_id == message_id)

    def types(self) -> dict[str, str]:
        return {letter.message_id: letter.error_type for letter in self.sent}


class FakeClaims:
    def __init__(self) -> None:
        self.records: dict[str, str] = {}

    @staticmethod
    def key(data: dict[str, Any]) -> str:
        return json.dumps(data, sort_keys=True)

    def claim(self, data: dict[str, Any], remaining_ms: int | None) -> ClaimState:
        status = self.records.get(self.key(data))
        if status == "COMPLETED":
            return ClaimState.COMPLETED
        if status == "INPROGRESS":
            return ClaimState.IN_PROGRESS
        self.records[self.key(data)] = "INPROGRESS"
        return ClaimState.CLAIMED

    def complete(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        self.records[self.key(data)] = "COMPLETED"

    def release(self, data: dict[str, Any], reason: Exception) -> None:
        self.records.pop(self.key(data), None)

    def register_lambda_context(self, context: Any) -> None:
        self.context = context


class FakeMetrics:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str | None]] = Counter()

    def count(self, name: str, value: int, *, schema: str | None = None) -> None:
        self.counts[(name, schema)] += value


class World:
    """PostRecords on fakes; ``run(*bodies)`` handles them as one SQS batch (ids m0, m1 …)."""

    def __init__(self, max_rows: int = 500, *, latency: float = 0.0, max_bytes: int = 1_000_000) -> None:
        self.clock = FakeClock()
        self.monetate = FakeMonetate(self.clock, latency)
        self.schemas = FakeSchemas(PURCHASES, VISITS)
        self.dlq = FakeDeadLetters()
        self.claims = FakeClaims()
        self.metrics = FakeMetrics()
        self.deps = PostRecordsDeps(
            client=self.monetate,
            schemas=self.schemas,
            dead_letters=self.dlq,
            claims=self.claims,
            rows=RowSettings(batch_max_rows=max_rows, batch_max_bytes=max_bytes),
            metrics=self.metrics,
        )

    def run(
        self,
        *bodies: str,
        budget: float | None = None,
        receive_count: int = 1,
        receive_limit: int | None = None,
    ) -> BatchOutcome:
        messages = [Incoming(f"m{i}", b, receive_count) for i, b in enumerate(bodies)]
        return process_messages(messages, self.deps, budget=self.budget(budget), receive_limit=receive_limit)

    def budget(self, seconds: float | None) -> Budget | None:
        if seconds is None:
            return None
        return Budget(
            seconds,
            ceiling=self.deps.deadline_margin_ceiling,
            latencies=self.deps.latencies,
            clock=self.clock,
        )

    def metric(self, name: str, schema: str | None = None) -> int:
        return self.metrics.counts[(name, schema)]


def purchase(pid: str, customer: str = "c1", price: Any = 9.5) -> dict[str, Any]:
    return {"purchase_id": pid, "customer_id": customer, "price": price}


def env(*rows: dict[str, Any], schema: str = "purchases", source: dict[str, Any] | None = None) -> str:
    return build_envelope(schema, list(rows), source)


def holds(text: str) -> Callable[[str, list[dict[str, Any]]], bool]:
    """A fault rule: the POST's rows contain ``text`` in some value (Monetate choking on a payload)."""
    return lambda schema, rows: any(text in str(v) for r in rows for v in r.values())
