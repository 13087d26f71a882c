"""Fault soak (issue 6): a 100,000-row file and 1,000 SQS messages through the local stack while the
sandbox misbehaves, ending with every valid row stored exactly once and every invalid one explained.

The run, on one :class:`~local.stack.LocalStack` (moto as a subprocess, the sandbox, the real
handlers in-process):

1. a unique-key dataset; 1,000 envelopes (1-5 rows each, 20 of them planted bad: not JSON, unknown
   schema, not an envelope, rows with bad numbers or no identifier) on the records queue, and a
   100,000-row CSV (1,000 planted bad rows: bad number, bad boolean, bad date, missing identifier)
   dropped into ``incoming/``;
2. the sandbox injects 20% 5xx (a quarter of them nginx-style HTML 502s), 10% 429 (every other
   second with ``Retry-After``), 2% latency spikes of 1 s, on auth and Data API alike (seeded);
3. IngestFile runs on the S3 notification (Lambda's async retries emulated: a failed invocation is
   invoked again, twice at most). After its 40th stored POST Monetate goes fully down for
   ``OUTAGE_SECONDS`` — longer than the client's 6 retries can bridge — so batches are *parked* on
   the records queue and the parking path is exercised every run, not 1 run in 25;
4. when the outage ends the SQS poller (the event source mapping: batch 10, failed messages back
   after 1 s, SQS's own maxReceiveCount 5 → DLQ) drains the records queue concurrently with the
   rest of the file — the 1,000 messages and the parked batches — with the random faults still on;
5. after 60 more stored POSTs every live token is expired once (early expiry: 401 → re-mint);
6. after the poller's 30th invocation Monetate goes down again for ``OUTAGE2_SECONDS`` and until
   a PostRecords invocation has failed a message (at most ``OUTAGE2_MAX_SECONDS``): the
   PostRecords invocations in flight fail, their messages come back 1 s later and are retried
   (partly posted batches are posted again: harmless under the unique key).

Then: every valid row is stored exactly once with the right values and no invalid row is; the
report's counts add up (read = posted + rejected + parked, and the parked rows arrived through
PostRecords); every bad CSV row is in the rejects file with its line and a reason naming the field;
the DLQ holds exactly the 20 planted bad messages, each with its ``error_type``/``error_message``,
and nothing else (a message dead-lettered by maxReceiveCount has no ``error_type`` and fails it).

Determinism: the fault draws are seeded, but which request gets which draw depends on thread
timing, so the test is built to pass for *any* assignment: a batch is parked only after 7 failed
attempts, a message reaches the DLQ by redrive only after 5 failed invocations (each already 7
attempts deep: a failed invocation takes seconds of backoff, so outage 2 fails a message once or
twice, not five times), outage 1 happens before the poller starts. What is left to chance (≈2e-4
per batch to park, which the assertions allow; far less for a message to be redriven) is well
below one failure in thousands of runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.samples import customers_schema
from local.sandbox import FaultConfig
from local.sqs_poller import PollResult, SqsPoller, send_batch_of_messages
from local.stack import LocalStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SCHEMA = "soak_customers"
DATASET = customers_schema(SCHEMA)
FILE_KEY = "incoming/soak_customers/soak/customers-100k.csv"
REPORT_KEY = "reports/soak_customers/soak/customers-100k.csv.report.json"
REJECTS_KEY = "rejects/soak_customers/soak/customers-100k.csv.rejects.jsonl"
HEADER = "customer_id,email,points,vip,signup,tags"

FILE_ROWS = 100_000
BAD_ROW_EVERY = 100  # 1% of the file
MESSAGES = 1_000
SEED = 20261128

ENV = {"HTTP_MAX_RETRIES": "6", "BATCH_MAX_ROWS": "500", "POST_CONCURRENCY": "4"}
FAULTS = {
    "error_rate": 0.15,  # 500 with Monetate's JSON envelope
    "html_error_rate": 0.05,  # 502 from a "proxy": 20% 5xx in all
    "rate_429": 0.10,
    "latency_spikes": (0.02, 1.0),
}
RETRY_AFTER = 0.3  # seconds, sent with the 429s every other second
OUTAGE_AFTER_POSTS = 40
OUTAGE_SECONDS = 12.0  # > the client's longest likely retry run (≤ 12.6 s of backoff for 6 retries)
EXPIRE_AFTER_MORE_POSTS = 60
OUTAGE2_AFTER_INVOCATIONS = 30  # PostRecords invocations (of ~100)
OUTAGE2_SECONDS = 14.0  # fails the invocations in flight: their messages come back and are retried
OUTAGE2_MAX_SECONDS = 60.0  # outage 2 lasts until PostRecords has failed a message, at most this long
POLLER_FAILURE_VISIBILITY = 1  # seconds: a failed message is back on the queue 1 s later


# --- the planted data -------------------------------------------------------------------------


@dataclass
class Plan:
    """What was sent and what must become of it."""

    csv: bytes = b""
    bodies: list[str] = field(default_factory=list)
    #: unique key → the stored record Monetate must end with
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: keys that appear in invalid rows or bad messages and must never be stored
    forbidden: set[str] = field(default_factory=set)
    #: CSV line → the field its reject must name
    bad_lines: dict[int, str] = field(default_factory=dict)
    #: message index → (error_type, the exact DLQ body or None, fields the reason must name)
    bad_messages: dict[int, tuple[str, str | None, tuple[str, ...]]] = field(default_factory=dict)
    #: message index → the refused rows a partial DLQ letter must hold
    refused_rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    sqs_rows: int = 0


_BAD_CELLS = (("points", "12.5.1"), ("vip", "maybe"), ("signup", "not-a-date"), ("customer_id", ""))


def _plan_file(plan: Plan) -> None:
    lines = [HEADER]
    for i in range(FILE_ROWS):
        key = f"f{i}"
        cells = {
            "customer_id": key,
            "email": f" u{i}@x.com ",
            "points": str(i) if i % 3 else f"{i}.25",
            "vip": "true" if i % 2 else "no",
            "signup": "2024-05-01 10:00",
            "tags": '"a, b"',
        }
        if i % BAD_ROW_EVERY == 37:
            field_name, cell = _BAD_CELLS[(i // BAD_ROW_EVERY) % len(_BAD_CELLS)]
            cells[field_name] = cell
            plan.bad_lines[i + 2] = field_name  # the header is line 1
            plan.forbidden.add(key)
        else:
            plan.expected[key] = {
                "customer_id": key,
                "email": f"u{i}@x.com",
                "points": i if i % 3 else i + 0.25,
                "vip": i % 2 == 1,
                "signup": "2024-05-01T10:00:00Z",
                "tags": "a,b",
            }
        lines.append(",".join(cells[f] for f in HEADER.split(",")))
    plan.csv = ("\n".join(lines) + "\n").encode()


def _good_row(key: str, n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the row as a producer sends it, the record Monetate stores)."""
    sent = {
        "customer_id": key,
        "email": f"{key}@q.example",
        "points": n if n % 2 else str(n),
        "vip": n % 3 == 0,
        "signup": "2024-06-01T12:00:00+02:00",
        "tags": ["x", "y"],
    }
    stored = {
        "customer_id": key,
        "email": f"{key}@q.example",
        "points": n,
        "vip": n % 3 == 0,
        "signup": "2024-06-01T10:00:00Z",
        "tags": "x,y",
    }
    return sent, stored


def _envelope(rows: list[dict[str, Any]], m: int, schema: str = SCHEMA) -> str:
    from monetate_ingest.delivery.envelope import build_envelope

    return build_envelope(schema, rows, {"soak": m})


#: The 20 bad messages (2%), by position in the 1,000.
_BAD_KINDS = (
    ["invalid_json"] * 5 + ["unknown_schema"] * 3 + ["missing_schema", "empty_rows", "not_an_envelope"]
)
_BAD_KINDS += ["partly_bad"] * 6 + ["all_bad"] * 3


def _plan_messages(plan: Plan) -> None:
    rng = random.Random(SEED)
    bad_at = {7 + 50 * k: kind for k, kind in enumerate(_BAD_KINDS)}
    for m in range(MESSAGES):
        kind = bad_at.get(m)
        goods = [_good_row(f"q{m}-{j}", m * 10 + j) for j in range(rng.randint(1, 5))]
        bad_number = {**_good_row(f"qbad{m}-n", 1)[0], "points": "twelve"}
        no_identifier = {k: v for k, v in _good_row(f"qbad{m}-i", 2)[0].items() if k != "customer_id"}
        if kind is None:
            body = _envelope([s for s, _ in goods], m)
            plan.expected.update((r["customer_id"], r) for _, r in goods)
            plan.sqs_rows += len(goods)
        elif kind == "invalid_json":
            body = f"customer_id=q{m},email=x@y (not JSON, message {m})"
            plan.bad_messages[m] = ("invalid_json", body, ())
        elif kind == "unknown_schema":
            body = _envelope([s for s, _ in goods], m, schema="soak_no_such_dataset")
            plan.forbidden.update(s["customer_id"] for s, _ in goods)
            plan.bad_messages[m] = ("unknown_schema", body, ("soak_no_such_dataset",))
        elif kind in ("missing_schema", "empty_rows", "not_an_envelope"):
            data: Any = {
                "missing_schema": {"rows": [goods[0][0]], "source": {"soak": m}},
                "empty_rows": {"schema": SCHEMA, "rows": [], "source": {"soak": m}},
                "not_an_envelope": {"schema": SCHEMA, "rows": [goods[0][0]], "source": {"soak": m}, "id": m},
            }[kind]
            body = json.dumps(data)
            plan.forbidden.add(goods[0][0]["customer_id"])
            plan.bad_messages[m] = (kind, body, ())
        elif kind == "partly_bad":
            rows = [goods[0][0], bad_number, *(s for s, _ in goods[1:]), no_identifier]
            body = _envelope(rows, m)
            plan.expected.update((r["customer_id"], r) for _, r in goods)
            plan.sqs_rows += len(rows)
            plan.forbidden.add(bad_number["customer_id"])
            plan.bad_messages[m] = ("rows_rejected", None, ("points", "customer_id"))
            plan.refused_rows[m] = [bad_number, no_identifier]
        else:  # all_bad: every row refused → the original body, byte for byte
            body = _envelope([bad_number, no_identifier], m)
            plan.sqs_rows += 2
            plan.forbidden.add(bad_number["customer_id"])
            plan.bad_messages[m] = ("rows_rejected", body, ("points", "customer_id"))
        plan.bodies.append(body)
    assert len(plan.bad_messages) == 20


def make_plan() -> Plan:
    plan = Plan()
    _plan_file(plan)
    _plan_messages(plan)
    assert not plan.forbidden & plan.expected.keys()
    return plan


# --- the disturbances -------------------------------------------------------------------------


class Disturbances:
    """A timer thread running the fault schedule: ``Retry-After`` on the 429s every other second;
    outage 1 after ``OUTAGE_AFTER_POSTS`` stored POSTs (IngestFile alone); one early token expiry
    ``EXPIRE_AFTER_MORE_POSTS`` stored POSTs after it; outage 2 once the poller has made
    ``OUTAGE2_AFTER_INVOCATIONS`` invocations (``poller_invocations`` is set by the test)."""

    def __init__(self, stack: LocalStack) -> None:
        self.sandbox = stack.sandbox
        self.stop = threading.Event()
        self.outage_over = threading.Event()  # outage 1
        self.poller_invocations: Any = None  # () -> int, once the poller exists
        self.poller_failures: Any = None  # () -> int: invocations that failed a message
        self.outages: list[tuple[float, float]] = []
        self.expired_at_posts: int | None = None
        self.tokens_expired = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="soak-disturbances", daemon=True)

    def __enter__(self) -> Disturbances:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=max(OUTAGE_SECONDS, OUTAGE2_MAX_SECONDS) + 5)

    def _run(self) -> None:
        try:
            self._schedule()
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            self.outage_over.set()

    def _schedule(self) -> None:
        faults = self.sandbox.faults
        saved = (faults.error_rate, faults.html_error_rate, faults.rate_429)
        outage_end: float | None = None
        after_outage = 0
        next_toggle = time.monotonic() + 1.0
        while not self.stop.wait(0.02):
            now = time.monotonic()
            if now >= next_toggle:  # some 429s carry Retry-After, some do not
                faults.retry_after = None if faults.retry_after is not None else RETRY_AFTER
                next_toggle = now + 1.0
            if outage_end is not None:
                if now >= outage_end and (len(self.outages) == 1 or self._outage2_failed_one(now)):
                    faults.error_rate, faults.html_error_rate, faults.rate_429 = saved
                    outage_end = None
                    if len(self.outages) == 1:
                        after_outage = self.sandbox.counts["data_posts"]
                        self.outage_over.set()
                continue
            posts = self.sandbox.counts["data_posts"]
            first = not self.outages and posts >= OUTAGE_AFTER_POSTS
            second = (
                len(self.outages) == 1
                and self.poller_invocations is not None
                and self.poller_invocations() >= OUTAGE2_AFTER_INVOCATIONS
            )
            if first or second:
                faults.error_rate, faults.html_error_rate, faults.rate_429 = 1.0, 0.0, 0.0
                outage_end = now + (OUTAGE_SECONDS if first else OUTAGE2_SECONDS)
                self.outages.append((now, outage_end))
            elif (
                self.outage_over.is_set()
                and self.expired_at_posts is None
                and posts >= after_outage + EXPIRE_AFTER_MORE_POSTS
            ):
                self.tokens_expired = self.sandbox.expire_tokens()
                self.expired_at_posts = posts

    def _outage2_failed_one(self, now: float) -> bool:
        """Outage 2 ends once a PostRecords invocation has failed a message (how long the client's
        jittered retries bridge varies by run and by load: ending on a fixed clock let every
        invocation bridge it now and then), or after ``OUTAGE2_MAX_SECONDS`` (then the test fails
        on the missing retry, naming it)."""
        started = self.outages[-1][0]
        failures = self.poller_failures() if self.poller_failures is not None else 0
        return bool(failures > 0 or now - started >= OUTAGE2_MAX_SECONDS)


# --- driving the stack ------------------------------------------------------------------------


def ingest_with_lambda_retries(stack: LocalStack) -> tuple[list[dict[str, Any]], int]:
    """Deliver the S3 notifications (and continuations) to IngestFile; an invocation that raised is
    invoked again with the same event, at most twice, as Lambda does for async invocations.
    Returns (every result, how many retries were made)."""
    results = stack.deliver_s3_events(max_seconds=400)
    retries: Counter[str] = Counter()
    seen = 0
    while True:
        failed = [inv for inv in stack.invocations[seen:] if "error" in inv["result"]]
        seen = len(stack.invocations)
        todo = []
        for inv in failed:
            key = json.dumps(inv["event"], sort_keys=True)
            if retries[key] < 2:
                retries[key] += 1
                todo.append(inv["event"])
        if not todo:
            return results, sum(retries.values())
        for event in todo:
            results.append(stack._invoke(stack.ingest_handler(), event))
        results.extend(stack.deliver_s3_events(max_seconds=400))


class Drainer(threading.Thread):
    """PostRecords behind the event source mapping, until IngestFile is done and the queue empty."""

    def __init__(self, stack: LocalStack, ingest_done: threading.Event, deadline: float) -> None:
        super().__init__(name="soak-poller", daemon=True)
        self.poller = SqsPoller(
            stack.moto.client("sqs"),  # its own client: the ingest thread uses the stack's
            stack.resources.records_queue_url,
            self._handle,
            batch_size=10,
            failure_visibility=POLLER_FAILURE_VISIBILITY,
        )
        self.handler = stack.post_records_handler()
        #: message id → body of every parked batch PostRecords was handed (origin: ingest_file)
        self.parked: dict[str, str] = {}
        self.ingest_done = ingest_done
        self.deadline = deadline
        self.results: list[PollResult] = []
        self.error: BaseException | None = None
        #: invocations that reported at least one failed message (read live by the disturbances)
        self.failed_invocations = 0

    def _handle(self, event: dict[str, Any], context: Any) -> Any:
        for record in event["Records"]:
            origin = record["messageAttributes"].get("origin", {}).get("stringValue")
            if origin == "ingest_file":
                self.parked[record["messageId"]] = record["body"]
        response = self.handler(event, context)
        if isinstance(response, dict) and response.get("batchItemFailures"):
            self.failed_invocations += 1
        return response

    def run(self) -> None:
        try:
            while time.monotonic() < self.deadline:
                finished = self.ingest_done.is_set()  # read before draining: parked messages
                left = self.deadline - time.monotonic()  # are sent before IngestFile returns
                self.results += self.poller.drain(max_seconds=left, include_in_flight=True)
                if finished:
                    return
                time.sleep(0.1)
        except BaseException as exc:
            self.error = exc


@contextlib.contextmanager
def quiet_handlers() -> Iterator[io.StringIO]:
    """Keep the handlers' INFO/WARNING JSON logs and EMF metric lines out of the test's output
    (tens of thousands of lines); errors still go through. Yields what was printed."""
    from monetate_ingest.observability import logger

    std = logging.getLogger(logger.name)
    level = std.level
    std.setLevel(logging.ERROR)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            yield sink
    finally:
        std.setLevel(level)


def drain_queue(stack: LocalStack, url: str) -> list[dict[str, Any]]:
    """Receive (and delete) every message on ``url``, with its attributes."""
    out: list[dict[str, Any]] = []
    while True:
        msgs = stack.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not msgs:
            return out
        for msg in msgs:
            out.append(msg)
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])


def queue_depth(stack: LocalStack, url: str) -> tuple[int, int]:
    attrs = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


# --- the soak ---------------------------------------------------------------------------------


def test_fault_soak() -> None:
    plan = make_plan()
    started = time.monotonic()
    with LocalStack(moto_subprocess=True, env_overrides=ENV) as stack, quiet_handlers():
        # Given a unique-key dataset, 1,000 envelopes on the records queue and a seeded, faulty Monetate
        stack.sandbox.add_schema(json.loads(json.dumps(DATASET)))
        send_batch_of_messages(stack.sqs, stack.resources.records_queue_url, plan.bodies)
        stack.sandbox.faults = FaultConfig(seed=SEED, apply_to="all", **FAULTS)  # type: ignore[arg-type]

        # When the 100,000-row file lands; Monetate goes down for a while, then PostRecords
        # drains the queue while IngestFile finishes; one early token expiry on the way
        ingest_done = threading.Event()
        deadline = time.monotonic() + 420
        drainer = Drainer(stack, ingest_done, deadline)
        with Disturbances(stack) as disturbances:
            stack.put_file(FILE_KEY, plan.csv)
            t_ingest = time.monotonic()
            ingest_thread_out: dict[str, Any] = {}

            def ingest() -> None:
                try:
                    ingest_thread_out["results"] = ingest_with_lambda_retries(stack)
                except BaseException as exc:
                    ingest_thread_out["error"] = exc
                finally:
                    ingest_thread_out["seconds"] = time.monotonic() - t_ingest
                    ingest_done.set()

            ingest_thread = threading.Thread(target=ingest, name="soak-ingest", daemon=True)
            ingest_thread.start()
            while not (disturbances.outage_over.wait(0.1) or ingest_done.is_set()):
                pass
            t_poll = time.monotonic()
            disturbances.poller_invocations = lambda: drainer.poller.invocations
            disturbances.poller_failures = lambda: drainer.failed_invocations
            drainer.start()
            ingest_thread.join(timeout=max(1.0, deadline - time.monotonic()))
            drainer.join(timeout=max(1.0, deadline - time.monotonic()) + 5)
            poll_seconds = time.monotonic() - t_poll
        counters = stack.sandbox.counts
        requests_log = stack.sandbox.requests

        # Then both drivers ended on their own, without errors
        assert disturbances.error is None, disturbances.error
        assert not ingest_thread.is_alive() and not drainer.is_alive(), "the soak did not finish in time"
        assert "error" not in ingest_thread_out, ingest_thread_out.get("error")
        assert drainer.error is None, drainer.error
        results, ingest_retries = ingest_thread_out["results"]
        assert len(disturbances.outages) == 2 and disturbances.expired_at_posts is not None
        assert disturbances.tokens_expired >= 1
        handler_errors = [r.error for r in drainer.results if r.error]
        assert handler_errors == [], handler_errors[:3]

        # And the file is complete, its counts adding up, batches parked during the outage
        final = [f for r in results for f in r.get("files", []) if f.get("key") == FILE_KEY]
        assert final and final[-1]["status"] == "complete", results
        report = stack.read_json(REPORT_KEY)
        counts = report["counts"]
        assert report["status"] == "complete"
        assert counts["read"] == FILE_ROWS
        assert counts["read"] == counts["posted"] + counts["rejected"] + counts["parked"], counts
        assert counts["rejected"] == len(plan.bad_lines)
        assert counts["parked"] > 0, "the outage parked nothing: the parking path was not exercised"

        # And every bad CSV row is in the rejects file, at its line, with a reason naming the field
        rejects = stack.read_lines(REJECTS_KEY)
        by_line = {r["line"]: r for r in rejects}
        assert len(rejects) == len(by_line) == len(plan.bad_lines)
        assert by_line.keys() == plan.bad_lines.keys()
        for line, field_name in plan.bad_lines.items():
            reject = by_line[line]
            assert reject.get("field") == field_name, reject
            assert f"'{field_name}'" in reject["reason"], reject
            assert reject["raw"], reject

        # And the parked rows are exactly the rows PostRecords was handed by IngestFile's parking
        parked_rows = [
            (line, row)
            for body in drainer.parked.values()
            for line, row in zip(json.loads(body)["source"]["lines"], json.loads(body)["rows"], strict=True)
        ]
        assert len(parked_rows) == counts["parked"]
        assert len(drainer.parked) == report["batches"]["parked"]
        for line, row in parked_rows:
            assert line not in plan.bad_lines and row == plan.expected[f"f{line - 2}"], (line, row)

        # And the records queue is empty: every message and every parked batch was settled
        assert queue_depth(stack, stack.resources.records_queue_url) == (0, 0)

        # And the DLQ holds exactly the planted bad messages, each with its reason
        dead = drain_queue(stack, stack.resources.records_dlq_url)
        found: dict[int, dict[str, Any]] = {}
        body_to_index = {body: m for m, (_, body, _) in plan.bad_messages.items() if body is not None}
        for msg in dead:
            attrs = {k: v.get("StringValue") for k, v in (msg.get("MessageAttributes") or {}).items()}
            body = msg["Body"]
            if body in body_to_index:
                m = body_to_index[body]
            else:
                try:
                    m = json.loads(body)["source"]["soak"]
                except (ValueError, TypeError, KeyError):
                    pytest.fail(f"unexpected DLQ message: {body[:200]!r} {attrs}")
            assert m in plan.bad_messages, f"a good message was dead-lettered: {body[:300]!r} {attrs}"
            assert m not in found, f"message {m} dead-lettered twice"
            found[m] = {"body": body, "attrs": attrs}
        assert sorted(found) == sorted(plan.bad_messages), (
            f"missing from the DLQ: {sorted(set(plan.bad_messages) - set(found))}"
        )
        for m, (error_type, body, fields) in plan.bad_messages.items():
            attrs = found[m]["attrs"]
            assert attrs.get("error_type") == error_type, (m, attrs)
            message = attrs.get("error_message") or ""
            assert len(message) > 20, (m, attrs)
            for name in fields:
                assert name in message, (m, name, message)
            if body is None:  # only the refused rows, source kept
                letter = json.loads(found[m]["body"])
                assert letter["rows"] == plan.refused_rows[m], (m, letter)
                assert letter["source"] == {"soak": m}
        assert len(dead) == len(plan.bad_messages) == 20

        # And PostRecords' failed messages (outage 2) came back and were delivered on a later receive
        receives = sum(len(r.received) for r in drainer.results)
        distinct = len({mid for r in drainer.results for mid in r.received})
        assert distinct == MESSAGES + len(drainer.parked)
        assert receives > distinct, "outage 2 failed no PostRecords invocation"

        # And every valid row is stored exactly once, with its values; no invalid row is stored
        stored = stack.sandbox.rows(SCHEMA)
        keys = Counter(r["customer_id"] for r in stored)
        assert [k for k, n in keys.items() if n > 1] == []
        assert not keys.keys() & plan.forbidden, sorted(keys.keys() & plan.forbidden)[:10]
        missing = plan.expected.keys() - keys.keys()
        extra = keys.keys() - plan.expected.keys()
        assert not missing, f"{len(missing)} valid rows never stored, e.g. {sorted(missing)[:10]}"
        assert not extra, sorted(extra)[:10]
        wrong = [r for r in stored if r != plan.expected[r["customer_id"]]]
        assert not wrong, wrong[:3]
        assert len(stored) == len(plan.expected)

        # Summary (shown with -rA)
        client_stats, mints = _client_figures(stack)
        statuses = Counter(r.status for r in requests_log if r.method == "POST" and "/data/" in r.path)
        summary = {
            "rows": {
                "file": FILE_ROWS,
                "file_rejected": counts["rejected"],
                "sqs_messages": MESSAGES,
                "sqs_rows": plan.sqs_rows,
                "stored_distinct": len(stored),
                "stored_incl_replaced": counters["rows_stored"],
            },
            "data_posts": {"stored": counters["data_posts"], "by_status": dict(sorted(statuses.items()))},
            "requests": counters["requests"],
            "faults_injected": counters["faults"],
            "client": {**client_stats, "token_mints": mints, "tokens_expired": disturbances.tokens_expired},
            "ingest": {
                "invocations": len(stack.invocations),
                "lambda_retries": ingest_retries,
                "parked_rows": counts["parked"],
                "parked_batches": report["batches"]["parked"],
                "posted_rows": counts["posted"],
                "seconds": round(ingest_thread_out["seconds"], 1),
            },
            "post_records": {
                "invocations": len(drainer.results),
                "message_receives": receives,
                "parked_messages": distinct - MESSAGES,
                "redeliveries": receives - distinct,
                "seconds": round(poll_seconds, 1),
            },
            "dlq": len(dead),
            "outages_seconds": [OUTAGE_SECONDS, OUTAGE2_SECONDS],
            "token_expiry_at_post": disturbances.expired_at_posts,
            "seconds": round(time.monotonic() - started, 1),
        }
    print("fault soak:", json.dumps(summary, indent=1))


def _client_figures(stack: LocalStack) -> tuple[dict[str, int], int]:
    """The shared Monetate client's request/retry counts and token mints (same settings → same client)."""
    from monetate_ingest.monetate.factory import shared_client
    from monetate_ingest.settings import monetate_from_env

    client = shared_client(monetate_from_env())
    return dict(client.stats), int(client.tokens.mints if client.tokens else 0)
