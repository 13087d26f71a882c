"""PostRecords: merged POSTs versus one POST per message, 1-row messages, 50 ms Monetate latency.

The real handler runs in-process on Lambda-shaped SQS events (batch size 10, Lambda's default, and
100, as with a batching window) against the Monetate sandbox with 50 ms injected latency per
request (``validate_rows = False``: the sandbox is not what we measure) and moto (a subprocess) for
the idempotency table. The baseline is the same handler with ``BATCH_MAX_ROWS=1``: one POST per
message, what a per-record consumer does. It runs on fewer messages (1,000 POSTs at 50 ms would be
a minute on their own) and its POST count is scaled to 1,000 messages.

One more figure: the POSTs it takes to deliver a batch of 100 in which Monetate keeps failing one
message's rows (the sandbox answers 503 to any POST holding them): the merged POST is split by
message in halves, against one POST per message (``BATCH_MAX_ROWS=1``) in the same run.

Every message costs two idempotency round-trips (claim, then completion; run 16 at a time).
moto's DynamoDB answers them one at a time in ~4-6 ms, which caps these runs well below what the
POSTs allow, so the figures come twice: with idempotency on moto, and with it off (``NoClaims``),
which isolates what merging does to the Monetate side.

    python -m bench.bench_post_records
"""

from __future__ import annotations

import contextlib
import io
import itertools
import time
import uuid
from typing import Any

from local.sqs_poller import FakeLambdaContext, lambda_sqs_record
from local.stack import LocalStack

SCHEMA = "bench_events"
FIELDS = {
    "event_id": {"data_type": "STRING", "unique_key": True},
    "customer_id": {"data_type": "STRING", "identifier": True},
    "event_time": {"data_type": "DATETIME", "event_time": True},
    "value": {"data_type": "NUMBER"},
}
LATENCY = 0.05
MESSAGES = 1_000
MESSAGES_WITH_IDEMPOTENCY = 500
BASELINE_MESSAGES = 150
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:monetate-ingest-records"
POISON = "c-poisoned"
_runs = itertools.count()


def _events(n: int, batch_size: int, poisoned: int | None = None) -> list[dict[str, Any]]:
    from monetate_ingest.delivery.envelope import build_envelope

    run = f"r{next(_runs)}-{uuid.uuid4().hex[:6]}"  # fresh content: idempotency must not skip it
    records = []
    for i in range(n):
        body = build_envelope(
            SCHEMA,
            [
                {
                    "event_id": f"{run}-{i}",
                    "customer_id": POISON if i == poisoned else f"c{i % 97}",
                    "event_time": "2024-05-01T10:00:00Z",
                    "value": i,
                }
            ],
        )
        msg = {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": uuid.uuid4().hex,
            "Body": body,
            "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
        }
        records.append(lambda_sqs_record(msg, QUEUE_ARN, "us-east-1"))
    return [{"Records": records[i : i + batch_size]} for i in range(0, n, batch_size)]


def _measure(
    stack: LocalStack, *, messages: int, batch_size: int, max_rows: int, idempotency: bool
) -> dict[str, float]:
    from monetate_ingest.records.handler import build_deps, make_handler
    from monetate_ingest.records.idempotency import NoClaims
    from monetate_ingest.settings import RecordsSettings

    settings = RecordsSettings.from_env({**stack.env, "BATCH_MAX_ROWS": str(max_rows)})
    deps = build_deps(settings)
    if not idempotency:
        deps.claims = NoClaims()
    handler = make_handler(deps)
    sink = io.StringIO()  # EMF metric lines go to stdout
    with contextlib.redirect_stdout(sink):
        handler(_events(1, 1)[0], FakeLambdaContext())  # warm: token, schema, connections
        posts_before = stack.sandbox.counts["data_posts"]
        events = _events(messages, batch_size)
        started = time.perf_counter()
        for event in events:
            response = handler(event, FakeLambdaContext())
            if response["batchItemFailures"]:
                raise RuntimeError(f"unexpected failures: {response}")
        seconds = time.perf_counter() - started
    posts = stack.sandbox.counts["data_posts"] - posts_before
    return {
        "messages_per_s": messages / seconds,
        "posts_per_1000": posts * 1000 / messages,
        "seconds": seconds,
    }


def _isolation_posts(stack: LocalStack, *, max_rows: int) -> dict[str, float]:
    """Data POSTs (no client retries) to handle 100 one-row messages, one of them poisoned."""
    from monetate_ingest.records.handler import build_deps, make_handler
    from monetate_ingest.records.idempotency import NoClaims
    from monetate_ingest.settings import RecordsSettings

    env = {**stack.env, "BATCH_MAX_ROWS": str(max_rows), "HTTP_MAX_RETRIES": "0"}
    deps = build_deps(RecordsSettings.from_env(env))
    deps.claims = NoClaims()
    handler = make_handler(deps)
    with contextlib.redirect_stdout(io.StringIO()):
        handler(_events(1, 1)[0], FakeLambdaContext())  # warm: token, schema, connections
        stack.sandbox.faults.poison = POISON.encode()
        before = stack.sandbox.counts["requests"]
        response = handler(_events(100, 100, poisoned=37)[0], FakeLambdaContext())
        stack.sandbox.faults.poison = None
    if len(response["batchItemFailures"]) != 1:
        raise RuntimeError(f"expected only the poisoned message to fail: {response}")
    return {"posts": stack.sandbox.counts["requests"] - before}


def run() -> list[dict[str, Any]]:
    """Figures: messages/s and POSTs per 1,000 one-row messages, merged versus one POST each."""
    from monetate_ingest.observability import logger

    logger.setLevel("WARNING")
    with LocalStack(moto_subprocess=True) as stack:
        stack.sandbox.add_schema({"name": SCHEMA, "type": "event", "fields": FIELDS})
        stack.sandbox.validate_rows = False
        stack.sandbox.faults.latency = LATENCY
        rows: list[dict[str, Any]] = []
        for idempotency, label, n in (
            (True, "idempotency on moto", MESSAGES_WITH_IDEMPOTENCY),
            (False, "idempotency off", MESSAGES),
        ):
            baseline = _measure(
                stack, messages=BASELINE_MESSAGES, batch_size=10, max_rows=1, idempotency=idempotency
            )
            for batch_size in (10, 100):
                ours = _measure(
                    stack, messages=n, batch_size=batch_size, max_rows=500, idempotency=idempotency
                )
                rows.append(
                    _row(
                        f"messages/s, SQS batch {batch_size}, {label}",
                        ours,
                        baseline,
                        "messages_per_s",
                        "msg/s",
                    )
                )
                if not idempotency:
                    rows.append(
                        _row(
                            f"POSTs per 1,000 one-row messages, SQS batch {batch_size}",
                            ours,
                            baseline,
                            "posts_per_1000",
                            "POSTs",
                        )
                    )
        ours, baseline = _isolation_posts(stack, max_rows=500), _isolation_posts(stack, max_rows=1)
        rows.append(
            _row(
                "POSTs for 100 messages, one always failing (split in halves)",
                ours,
                baseline,
                "posts",
                "POSTs",
            )
        )
    return rows


def _row(
    figure: str, ours: dict[str, float], baseline: dict[str, float], key: str, unit: str
) -> dict[str, Any]:
    return {
        "figure": figure,
        "ours": round(ours[key], 1),
        "baseline": round(baseline[key], 1),
        "unit": unit,
        "ratio": round(ours[key] / baseline[key], 2) if baseline[key] else None,
    }


def _print(rows: list[dict[str, Any]]) -> None:
    print(f"{'figure':58} {'ours':>9} {'baseline':>9} {'unit':>6} {'ratio':>7}")
    for r in rows:
        print(f"{r['figure']:58} {r['ours']:>9} {r['baseline']:>9} {r['unit']:>6} {r['ratio']!s:>7}")
    print("baseline: the same handler with BATCH_MAX_ROWS=1 (one POST per message)")


if __name__ == "__main__":
    _print(run())
