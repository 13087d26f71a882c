"""The embedded local stack: moto for AWS, the sandbox for Monetate, the real handlers in-process.

Wired the way AWS wires them: S3 notifications (moto → an SQS queue, drained here) invoke
IngestFile; IngestFile's continuations invoke it again; the records queue feeds PostRecords through
a poller that behaves like the Lambda event source mapping; an HTTP front turns requests into API
Gateway events for ValidateRecord. Loopback addresses only.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import deque
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from local.aws import LocalResources, MotoServer, forget_powertools_clients, patched_environ, provision
from local.lambda_context import FakeLambdaContext
from local.sandbox import MonetateSandbox

RETAILER = "acme"
#: template.yaml: IngestFile's EventInvokeConfig MaximumRetryAttempts.
ASYNC_RETRIES = 2
USERNAME = "api-123-acme"


def new_key_pair() -> tuple[str, str]:
    """(private PEM, public PEM) of a fresh 2048-bit RSA key, as `openssl genrsa` would make."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


class LocalStack:
    """Start with ``with LocalStack() as stack:``; ``stack.env`` is what the handlers see."""

    def __init__(
        self,
        *,
        moto_subprocess: bool = False,
        function_timeout: float = 900.0,
        env_overrides: dict[str, str] | None = None,
        key_pair: tuple[str, str] | None = None,
    ) -> None:
        self.moto = MotoServer(subprocess=moto_subprocess)
        self.sandbox = MonetateSandbox(retailer=RETAILER)
        self.function_timeout = function_timeout
        self.env_overrides = dict(env_overrides or {})
        self.private_pem, self.public_pem = key_pair or new_key_pair()
        self.continuations: deque[dict[str, Any]] = deque()
        self.invocations: list[dict[str, Any]] = []
        self._env_cm: Any = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LocalStack:
        self.moto.start()
        self.sandbox.start()
        self.sandbox.register_key(USERNAME, self.public_pem)
        secret = json.dumps({"username": USERNAME, "private_key": self.private_pem})
        self.resources: LocalResources = provision(self.moto, secret_value=secret)
        self.env = {
            **self.moto.env(),
            **self.resources.function_env(retailer=RETAILER, api_url=self.sandbox.url),
            **self.env_overrides,
        }
        self._env_cm = patched_environ(self.env)
        self._env_cm.__enter__()
        forget_powertools_clients()  # this stack's handlers read the secret from this stack's moto
        self.s3 = self.moto.client("s3")
        self.sqs = self.moto.client("sqs")
        return self

    def stop(self) -> None:
        if self._env_cm is not None:
            self._env_cm.__exit__(None, None, None)
            self._env_cm = None
        self.sandbox.stop()
        forget_powertools_clients()  # nothing may keep a client bound to this stack's endpoint
        # moto's in-process backends are module globals that outlive the server thread: forget
        # every resource so the next stack in this process can provision the same names again.
        if self.moto.port:
            with contextlib.suppress(OSError):
                self.moto.reset()
        self.moto.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- handlers ------------------------------------------------------------------------------

    def ingest_handler(self) -> Any:
        """IngestFile's real handler, with continuations looped back into this stack."""
        from monetate_ingest.ingest.handler import default_runtime, make_handler

        def runtime() -> Any:
            rt = default_runtime()
            rt.continuer_for = lambda context: self.continuations.append
            return rt

        if not hasattr(self, "_ingest"):
            self._ingest = make_handler(runtime)
        return self._ingest

    def post_records_handler(self) -> Any:
        if not hasattr(self, "_post"):
            from monetate_ingest.records.handler import make_handler

            self._post = make_handler()
        return self._post

    def validate_handler(self) -> Any:
        if not hasattr(self, "_validate"):
            from monetate_ingest.spotcheck.app import make_handler

            self._validate = make_handler()
        return self._validate

    def context(self, name: str = "IngestFile") -> FakeLambdaContext:
        return FakeLambdaContext(name, timeout_seconds=self.function_timeout, memory_limit_in_mb=1769)

    # -- S3 → IngestFile ----------------------------------------------------------------------

    def put_file(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.resources.bucket, Key=key, Body=body)

    def deliver_s3_events(self, *, max_seconds: float = 600.0) -> list[dict[str, Any]]:
        """Invoke IngestFile for every S3 notification, then its continuations, until idle."""
        results: list[dict[str, Any]] = []
        deadline = time.monotonic() + max_seconds
        handler = self.ingest_handler()
        while time.monotonic() < deadline:
            msgs = self.sqs.receive_message(
                QueueUrl=self.resources.s3_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for msg in msgs:
                event = json.loads(msg["Body"])
                if "Records" in event:
                    results.append(self._invoke(handler, event))
                self.sqs.delete_message(
                    QueueUrl=self.resources.s3_events_queue_url, ReceiptHandle=msg["ReceiptHandle"]
                )
            while self.continuations:
                results.append(self._invoke(handler, self.continuations.popleft()))
            if not msgs and not self.continuations:
                break
        return results

    def _invoke(self, handler: Any, event: dict[str, Any]) -> dict[str, Any]:
        """As Lambda invokes asynchronously: up to 2 retries, then the on-failure destination."""
        for _attempt in range(1 + ASYNC_RETRIES):
            context = self.context()
            try:
                result = handler(event, context)
            except Exception as exc:  # the invocation failed
                result = {"error": type(exc).__name__, "message": str(exc)}
                self.invocations.append({"event": event, "result": result})
                continue
            left = context.get_remaining_time_in_millis()  # what the function had left at return
            self.invocations.append({"event": event, "result": result, "remaining_ms": left})
            return dict(result)
        self.sqs.send_message(
            QueueUrl=self.resources.ingest_failures_queue_url,
            MessageBody=json.dumps({"requestPayload": event, "responsePayload": result}),
        )
        return dict(result)

    # -- reading results -------------------------------------------------------------------------

    def read_json(self, key: str) -> Any:
        body = self.s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        return json.loads(body)

    def read_lines(self, key: str) -> list[dict[str, Any]]:
        body = self.s3.get_object(Bucket=self.resources.bucket, Key=key)["Body"].read()
        return [json.loads(line) for line in body.splitlines() if line.strip()]
