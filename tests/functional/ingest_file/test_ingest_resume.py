"""Idempotency (duplicate events, multipart uploads), resumption after a crash, continuation.

The ``visits`` schema has no unique key, so a row posted twice is stored twice: every test here
checks the sandbox holds each source row exactly once.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections import Counter
from typing import Any

from boto3.s3.transfer import TransferConfig

from local.aws import patched_environ
from local.sandbox.faults import FaultConfig
from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import (
    Harness,
    visits_csv,
)

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean


def _seqs(h: Harness, visitor: str) -> list[int]:
    return [int(r["seq"]) for r in h.sandbox.rows("visits") if r["visitor_id"] == visitor]


def _assert_once(h: Harness, visitor: str, n: int) -> None:
    seqs = _seqs(h, visitor)
    dupes = [s for s, c in Counter(seqs).items() if c > 1]
    assert not dupes, f"rows posted twice: {dupes[:10]}"
    assert sorted(seqs) == list(range(n))


def test_a_duplicate_event_posts_nothing(clean: Harness) -> None:
    # Given a file that was ingested once
    key = "incoming/visits/dup/once.csv"
    first = clean.drop(key, visits_csv(12, visitor="dup"), BATCH_MAX_ROWS="5")
    posts = len(clean.data_posts())
    event = clean.stack.invocations[-1]["event"]
    # When S3 delivers the same bucket/key/ETag event again (twice more, in one message and another)
    for _ in range(2):
        clean.stack.sqs.send_message(
            QueueUrl=clean.stack.resources.s3_events_queue_url, MessageBody=json.dumps(event)
        )
    again = clean.deliver(BATCH_MAX_ROWS="5")
    # Then nothing more is posted and every row is stored once
    assert posts == 3
    assert len(clean.data_posts()) == posts
    assert len(again) == 2
    assert [f["status"] for r in again for f in r["files"]] == [first[0]["files"][0]["status"]] * 2
    _assert_once(clean, "dup", 12)


def test_multipart_upload_events_post_once(clean: Harness) -> None:
    # Given a file uploaded in multipart (moto sends ObjectCreated:Put and :CompleteMultipartUpload)
    key = "incoming/visits/multipart/big.csv"
    body = visits_csv(300, visitor="mp").encode()
    assert len(body) > 2048
    clean.stack.s3.upload_fileobj(
        io.BytesIO(body), clean.bucket, key, Config=TransferConfig(multipart_threshold=1024)
    )
    # When both notifications reach IngestFile
    results = clean.deliver()
    # Then the file is processed once: one set of POSTs, each row stored once
    assert len([r for r in clean.stack.invocations[-2:] if "Records" in r["event"]]) == 2
    assert len(results) == 2
    assert len(clean.data_posts("visits")) == 1  # 300 rows < BATCH_MAX_ROWS (500)
    _assert_once(clean, "mp", 300)
    assert clean.report(key)["status"] == "complete"


class _CrashAfter:
    """A client that dies (like a killed container) on the POST after ``n`` successful ones."""

    def __init__(self, client: Any, n: int) -> None:
        self._client = client
        self._left = n

    def post_body(self, schema: str, body: bytes, **kw: Any) -> Any:
        if self._left <= 0:
            raise RuntimeError("the container died")
        self._left -= 1
        return self._client.post_body(schema, body, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_crashed_run_resumes_without_posting_twice(clean: Harness) -> None:
    # Given a run that checkpoints after every unit and dies on its 4th POST (3 batches of 5 stored)
    env = {"BATCH_MAX_ROWS": "5", "POST_CONCURRENCY": "1"}
    from monetate_ingest.ingest.handler import default_runtime

    with patched_environ(env):
        crashing = default_runtime()
    crashing.continuer_for = lambda context: clean.stack.continuations.append
    crashing.deps = dataclasses.replace(
        crashing.deps, client=_CrashAfter(crashing.deps.client, 3), checkpoint_interval=0.0
    )
    key = "incoming/visits/resume/crash.csv"
    (crashed,) = clean.drop(key, visits_csv(40, visitor="crash"), handler=clean.handler(crashing))
    assert crashed.get("error") == "RuntimeError"
    assert len(_seqs(clean, "crash")) == 15
    # When Lambda retries the same event in a fresh container
    event = clean.stack.invocations[-1]["event"]
    result = clean.handler(**env)(event, clean.stack.context())
    # Then only the remaining 25 rows are posted: every row stored exactly once, counts add up
    assert result["files"][0]["status"] == "complete", result
    _assert_once(clean, "crash", 40)
    assert len(clean.data_posts("visits")) == 3 + 5
    report = clean.report(key)
    assert report["counts"] == {"read": 40, "posted": 40, "rejected": 0, "parked": 0, "unchanged": 0}
    # … and every invocation is counted: the crashed one, Lambda's two retries (each met the crash
    # and saved its failed report), and this one
    assert report["invocations"] == 4


def test_a_file_continues_in_fresh_invocations_before_the_deadline(clean: Harness) -> None:
    # Given a 3 s function timeout (the 60 s margin is a ceiling, not a floor), 10-row batches and
    # Monetate taking 0.2 s per POST, so the 20 POSTs of the file cannot finish in one invocation
    clean.stack.function_timeout = 3.0
    clean.sandbox.faults = FaultConfig(latency=0.2, apply_to="post")
    env = {"DEADLINE_MARGIN_SECONDS": "60", "BATCH_MAX_ROWS": "10", "POST_CONCURRENCY": "1"}
    key = "incoming/visits/continue/long.csv"
    before = len(clean.stack.invocations)
    try:
        # When the file lands
        results = clean.drop(key, visits_csv(200, visitor="cont") + "cont,notanumber,/x\n", **env)
    finally:
        clean.stack.function_timeout = 900.0
    # Then it took several invocations, each returning at least 1 s before its deadline
    statuses = [f["status"] for r in results for f in r.get("files", [])]
    assert len(results) > 1, results
    assert statuses[-1] == "complete" and set(statuses[:-1]) == {"partial"}
    left = [i["remaining_ms"] for i in clean.stack.invocations[before:]]
    assert min(left) >= 1000, left
    report = clean.report(key)
    assert report["status"] == "complete"
    assert report["invocations"] == len(results) > 1
    assert report["counts"] == {"read": 201, "posted": 200, "rejected": 1, "parked": 0, "unchanged": 0}
    _assert_once(clean, "cont", 200)
    (reject,) = clean.rejects(key)
    assert reject["line"] == 202 and reject["field"] == "seq"
