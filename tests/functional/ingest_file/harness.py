"""Fixtures for the IngestFile functional tests: one local stack per test module.

Import the fixtures explicitly (``from tests.functional.ingest_file.harness import harness, clean``);
``tests/functional/conftest.py`` belongs to another suite. Each module gets its own
:class:`~local.stack.LocalStack` (moto in-process + the sandbox); ``clean`` resets the sandbox's
rows, log and faults before every test, and tests use their own S3 keys.

Settings are read once per runtime, so a test that needs other settings (``UNKNOWN_COLUMNS``,
``CSV_DELIMITER``…) asks :meth:`Harness.handler` for a handler built under that environment: the
real :func:`~monetate_ingest.ingest.handler.default_runtime` with continuations looped back into the stack.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from local.aws import patched_environ
from local.samples import customers_schema
from local.sandbox.requestlog import LoggedRequest
from local.stack import USERNAME, LocalStack

CUSTOMERS = customers_schema()
#: No unique key: every POST appends, so a row posted twice shows up twice.
VISITS = {
    "name": "visits",
    "type": "attribute",
    "fields": {
        "visitor_id": {"data_type": "STRING", "identifier": True},
        "seq": {"data_type": "NUMBER"},
        "page": {"data_type": "STRING"},
    },
}
HEADER = "customer_id,email,points,vip,signup,tags"

#: Fast client retries where retries are exercised (the client's backoff base is 0.2 s, full jitter).
FAST_RETRIES = {"HTTP_MAX_RETRIES": "1"}

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def customers_csv(n: int, *, prefix: str = "c", start: int = 0, newline: str = "\n") -> str:
    """A header and ``n`` valid customer rows with ids ``{prefix}{i}``."""
    rows = [HEADER] + [
        f'{prefix}{i},u{i}@x.com,{i},{"true" if i % 2 else "no"},2024-05-01 10:00,"a,b"'
        for i in range(start, start + n)
    ]
    return newline.join(rows) + newline


def customers_objects(n: int, *, prefix: str = "j") -> list[dict[str, Any]]:
    return [
        {
            "customer_id": f"{prefix}{i}",
            "email": f"u{i}@x.com",
            "points": i,
            "vip": i % 2 == 1,
            "signup": "2024-05-01T10:00:00+02:00",
            "tags": ["a", "b"],
        }
        for i in range(n)
    ]


def visits_csv(n: int, *, visitor: str) -> str:
    return "visitor_id,seq,page\n" + "".join(f"{visitor},{i},/p/{i}\n" for i in range(n))


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def assert_invariant(report: dict[str, Any]) -> None:
    """read = posted + rejected + parked + unchanged, in every report the contract writes."""
    c = report["counts"]
    assert c["read"] == c["posted"] + c["rejected"] + c["parked"] + c["unchanged"], c


class RevokeAfter:
    """Revokes the API user's key in the sandbox right after ``n`` successful POSTs."""

    def __init__(self, client: Any, sandbox: Any, n: int) -> None:
        self._client, self._sandbox, self._left = client, sandbox, n

    def post_body(self, schema: str, body: bytes, **kw: Any) -> Any:
        result = self._client.post_body(schema, body, **kw)
        self._left -= 1
        if self._left == 0:
            self._sandbox.revoke_key(USERNAME)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class Harness:
    """The stack plus helpers to drop files, run the handler and read what it wrote."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sandbox = stack.sandbox
        self.bucket = stack.resources.bucket
        self._runtimes: dict[frozenset[tuple[str, str]], Any] = {}

    # -- handlers ----------------------------------------------------------------------------

    def runtime(self, **env: str) -> Any:
        """The real AWS runtime built under ``env`` (cached per env), continuations looped back."""
        key = frozenset(env.items())
        if key not in self._runtimes:
            from monetate_ingest.ingest.handler import default_runtime

            with patched_environ(env):
                rt = default_runtime()
            rt.continuer_for = lambda context: self.stack.continuations.append
            self._runtimes[key] = rt
        return self._runtimes[key]

    def handler(self, runtime: Any = None, **env: str) -> Handler:
        from monetate_ingest.ingest.handler import make_handler

        rt = runtime if runtime is not None else self.runtime(**env)
        return make_handler(lambda: rt)

    @contextmanager
    def using(self, handler: Handler) -> Iterator[None]:
        """Route the stack's S3 notifications and continuations to ``handler``."""
        saved = getattr(self.stack, "_ingest", None)
        self.stack._ingest = handler
        try:
            yield
        finally:
            if saved is None:
                del self.stack._ingest
            else:
                self.stack._ingest = saved

    def deliver(self, handler: Handler | None = None, **env: str) -> list[dict[str, Any]]:
        """Drain S3 notifications (and continuations) into ``handler`` (or one built for ``env``)."""
        with self.using(handler or self.handler(**env)):
            return self.stack.deliver_s3_events(max_seconds=60)

    def drop(
        self, key: str, body: bytes | str, *, handler: Handler | None = None, **env: str
    ) -> list[dict[str, Any]]:
        """Put ``key`` and run IngestFile on its notification(s)."""
        self.stack.put_file(key, body.encode() if isinstance(body, str) else body)
        return self.deliver(handler, **env)

    # -- results -------------------------------------------------------------------------------

    def report(self, key: str) -> dict[str, Any]:
        report = self.stack.read_json(report_key(key))
        assert_invariant(report)
        return dict(report)

    def rejects(self, key: str) -> list[dict[str, Any]]:
        return self.stack.read_lines(rejects_key(key))

    def exists(self, key: str) -> bool:
        found = self.stack.s3.list_objects_v2(Bucket=self.bucket, Prefix=key).get("Contents", [])
        return any(o["Key"] == key for o in found)

    def stored(self, schema: str, prefix: str = "", field: str = "customer_id") -> list[dict[str, Any]]:
        """Rows the sandbox holds for ``schema`` whose ``field`` starts with ``prefix``."""
        return [r for r in self.sandbox.rows(schema) if str(r.get(field, "")).startswith(prefix)]

    def data_posts(self, schema: str | None = None) -> list[LoggedRequest]:
        return [
            r
            for r in self.sandbox.requests
            if r.method == "POST"
            and "/data/" in r.path
            and (schema is None or r.path.endswith(f"/data/{schema}/"))
        ]

    def queue_messages(self, url: str, *, max_rounds: int = 10) -> list[dict[str, Any]]:
        """Receive (and delete) every message on ``url``."""
        sqs, out = self.stack.sqs, []
        for _ in range(max_rounds):
            msgs = sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                out.append(m)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out


def report_key(key: str) -> str:
    area, schema, name = _split(key)
    return f"reports/{area}{schema}/{name}.report.json"


def rejects_key(key: str) -> str:
    area, schema, name = _split(key)
    return f"rejects/{area}{schema}/{name}.rejects.jsonl"


def _split(key: str) -> tuple[str, str, str]:
    top, schema, name = key.split("/", 2)
    return ("dry-run/" if top == "dry-run" else ""), schema, name


def ids(rows: list[dict[str, Any]], field: str = "customer_id") -> list[str]:
    return [str(r[field]) for r in rows]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """A local stack for this module, with the ``customers`` and ``visits`` schemas."""
    with LocalStack() as stack:
        stack.sandbox.add_schema(json.loads(json.dumps(CUSTOMERS)))
        stack.sandbox.add_schema(json.loads(json.dumps(VISITS)))
        yield Harness(stack)


@pytest.fixture
def clean(harness: Harness) -> Harness:
    """The module's harness with the sandbox's rows, request log and faults reset."""
    harness.sandbox.reset()
    harness.stack.continuations.clear()
    return harness
