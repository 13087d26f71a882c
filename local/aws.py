"""Local AWS for tests, the demo and the benchmarks: moto in server mode on a loopback port.

One place provisions what the functions need — the bucket (with S3 → SQS notifications standing in
for the Lambda trigger), the records queue and its dead-letter queue, the idempotency table and the
secret — so the demo, the tests and the benchmarks share one layout. Nothing here talks to real AWS:
every client is built with the moto server's endpoint and fake credentials.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
#: Mirrors template.yaml: RecordsQueue's redrive policy.
MAX_RECEIVE_COUNT = 5
RECORDS_VISIBILITY_TIMEOUT = 360


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer:
    """moto's server on 127.0.0.1, in this process (a thread) or as a subprocess.

    A subprocess keeps moto's work off this interpreter's GIL, which matters for benchmarks;
    a thread starts faster and is the default for tests.
    """

    def __init__(self, *, subprocess: bool = False) -> None:
        self._use_subprocess = subprocess
        self._thread_server: Any = None
        self._proc: Any = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment that points boto3 (and so the handlers) at this server."""
        return {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.url}

    def client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def start(self) -> MotoServer:
        if self._use_subprocess:
            self.port = _free_port()
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self._wait_ready()
        else:
            import logging

            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per call

            self._thread_server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            self._thread_server.start()
            self.port = self._thread_server.get_host_and_port()[1]
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto server did not start on {self.url} within {timeout:.0f} s")

    def reset(self) -> None:
        """Forget every resource (moto's reset API)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        if self._thread_server is not None:
            self._thread_server.stop()
            self._thread_server = None
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
            self._proc = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class LocalResources:
    """Names and URLs of what :func:`provision` created."""

    bucket: str
    records_queue_url: str
    records_queue_arn: str
    records_dlq_url: str
    records_dlq_arn: str
    s3_events_queue_url: str
    ingest_failures_queue_url: str
    table: str
    secret_id: str
    event_bus: str
    extra: dict[str, str] = field(default_factory=dict)
    ledger_table: str = ""

    def function_env(self, *, retailer: str, api_url: str, **overrides: str) -> dict[str, str]:
        """The environment template.yaml gives the three functions, pointed at the local stack."""
        env = {
            "MONETATE_API_URL": api_url,
            "MONETATE_RETAILER": retailer,
            "MONETATE_ENVIRONMENT": "production",
            "MONETATE_SECRET_ID": self.secret_id,
            "RECORDS_QUEUE_URL": self.records_queue_url,
            "RECORDS_DLQ_URL": self.records_dlq_url,
            "IDEMPOTENCY_TABLE": self.table,
            "SYNC_LEDGER_TABLE": self.ledger_table,
            "EVENT_BUS_NAME": self.event_bus,
            "POWERTOOLS_SERVICE_NAME": "monetate-ingest",
            "POWERTOOLS_METRICS_NAMESPACE": "MonetateIngest",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        env.update(overrides)
        return env


def _id_table(ddb: Any, name: str) -> str:
    """A table as the template makes the idempotency and ledger tables: key ``id``, TTL ``expiration``."""
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"}
    )
    return name


def provision(
    moto: MotoServer,
    *,
    secret_value: str,
    prefix: str = "monetate-ingest",
    secret_name: str = "monetate/api-user",  # noqa: S107 - a name, not a password
) -> LocalResources:
    """Create the bucket, queues, table, event bus rule target and secret the functions use."""
    s3, sqs, ddb = moto.client("s3"), moto.client("sqs"), moto.client("dynamodb")
    sm, events = moto.client("secretsmanager"), moto.client("events")

    bucket = f"{prefix}-data"
    s3.create_bucket(Bucket=bucket)

    dlq_url = sqs.create_queue(QueueName=f"{prefix}-records-dlq")["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    records_url = sqs.create_queue(
        QueueName=f"{prefix}-records",
        Attributes={
            "VisibilityTimeout": str(RECORDS_VISIBILITY_TIMEOUT),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    failures_url = sqs.create_queue(QueueName=f"{prefix}-ingest-failures")["QueueUrl"]
    events_url = sqs.create_queue(QueueName=f"{prefix}-s3-events")["QueueUrl"]
    events_arn = _queue_arn(sqs, events_url)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": events_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": p}]}},
                }
                for p in ("incoming/", "dry-run/")
            ]
        },
    )

    table = _id_table(ddb, f"{prefix}-idempotency")
    ledger_table = _id_table(ddb, f"{prefix}-sync-ledger")  # template.yaml's SyncLedgerTable

    secret_arn = sm.create_secret(Name=secret_name, SecretString=secret_value)["ARN"]

    # Completion events: a rule on the default bus that copies ours to a queue the demo can read.
    completions_url = sqs.create_queue(QueueName=f"{prefix}-completions")["QueueUrl"]
    events.put_rule(
        Name=f"{prefix}-file-finished",
        EventPattern=json.dumps({"source": ["monetate-ingest"]}),
        State="ENABLED",
    )
    events.put_targets(
        Rule=f"{prefix}-file-finished",
        Targets=[{"Id": "completions", "Arn": _queue_arn(sqs, completions_url)}],
    )
    return LocalResources(
        bucket=bucket,
        records_queue_url=records_url,
        records_queue_arn=_queue_arn(sqs, records_url),
        records_dlq_url=dlq_url,
        records_dlq_arn=dlq_arn,
        s3_events_queue_url=events_url,
        ingest_failures_queue_url=failures_url,
        table=table,
        secret_id=secret_arn,
        event_bus="default",
        extra={"completions_queue_url": completions_url},
        ledger_table=ledger_table,
    )


def _queue_arn(sqs: Any, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attrs["Attributes"]["QueueArn"])


@contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (the handlers read settings from os.environ)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def forget_powertools_clients() -> None:
    """Drop Powertools Parameters' cached values and its Secrets Manager client.

    Powertools keeps one client per process, bound to the endpoint it first saw; a later moto on
    another port must not be answered by a client still pointing at the old one.
    """
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base as parameters_base

    parameters.clear_caches()  # type: ignore[no-untyped-call]
    parameters_base.DEFAULT_PROVIDERS.clear()
