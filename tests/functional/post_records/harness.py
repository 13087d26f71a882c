"""The PostRecords functional harness: the real handler on moto (SQS, DynamoDB, Secrets Manager) and the
Monetate sandbox, with AWS calls that can be made to fail.

``make_stack`` provisions a fresh set of queues, table and secret per test (names from a counter),
wires :func:`build_deps` to them and returns a :class:`Stack` that sends bodies to the records queue
and hands them to the handler as Lambda would. :class:`Failing` is a boto3 client whose named
operations fail the way AWS does on a bad day (a ``ClientError``), everything else passing through
to moto.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from monetate_ingest.delivery.envelope import build_envelope
from monetate_ingest.monetate.factory import build_client
from monetate_ingest.monetate.schema import SchemaCache
from monetate_ingest.records.handler import PostRecordsDeps, build_deps, make_handler
from monetate_ingest.settings import RecordsSettings

from local.aws import MotoServer, provision
from local.samples import purchases_schema
from local.sandbox import MonetateSandbox
from local.sqs_poller import FakeLambdaContext, lambda_sqs_record

USERNAME = "api-123-example"
PURCHASES = purchases_schema()
VISITS = {"name": "visits", "fields": {"customer_id": {"data_type": "STRING", "identifier": True}}}
_prefixes = itertools.count()


def purchase(pid: str, price: Any = 9.5, **extra: Any) -> dict[str, Any]:
    return {
        "purchase_id": pid,
        "customer_id": "c1",
        "purchase_time": "2024-05-01T10:00:00Z",
        "price": price,
        **extra,
    }


def env(*rows: dict[str, Any], schema: str = "purchases", source: dict[str, Any] | None = None) -> str:
    return build_envelope(schema, list(rows), source)


class Failing:
    """A boto3 client whose ``operations`` raise ``ClientError`` (``code``); ``calls`` counts them all.

    ``without_old_item``: a failed conditional put does not return the stored item (as DynamoDB
    answers boto3 clients older than 1.26.164), so Powertools reads it with ``GetItem``.
    """

    def __init__(
        self, client: Any, *operations: str, code: str = "ServiceUnavailable", without_old_item: bool = False
    ) -> None:
        self._client = client
        self.failing = set(operations)
        self.code = code
        self.without_old_item = without_old_item
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            if name in self.failing:
                error = {"Error": {"Code": self.code, "Message": f"{name} failed (injected)"}}
                raise ClientError(error, name)  # type: ignore[arg-type]
            try:
                return attr(*args, **kwargs)
            except ClientError as exc:
                if self.without_old_item:
                    exc.response.pop("Item", None)  # type: ignore[misc]
                raise

        return call


@dataclass
class Stack:
    moto: MotoServer
    sandbox: MonetateSandbox
    settings: RecordsSettings
    sqs: Any
    queue_url: str
    dlq_url: str
    deps: PostRecordsDeps
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    queue_arn: str
    clients: dict[str, Failing] = field(default_factory=dict)

    def event(self, *bodies: str) -> dict[str, Any]:
        """Send ``bodies`` to the records queue and receive them as Lambda would deliver them."""
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)
        got: list[dict[str, Any]] = []
        while len(got) < len(bodies):
            got += self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        order = {b: i for i, b in reversed(list(enumerate(bodies)))}
        got.sort(key=lambda m: order[m["Body"]])
        return {"Records": [lambda_sqs_record(m, self.queue_arn, "us-east-1") for m in got]}

    def invoke(self, *bodies: str) -> tuple[dict[str, Any], list[str]]:
        event = self.event(*bodies)
        response = self.handler(event, FakeLambdaContext())
        return response, [r["messageId"] for r in event["Records"]]

    def redeliver(
        self, event: dict[str, Any], response: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The records of ``event`` listed in ``response``'s failures, delivered once more."""
        again = set(failed(response))
        records = []
        for r in event["Records"]:
            if r["messageId"] in again:
                count = int(r["attributes"].get("ApproximateReceiveCount", "1")) + 1
                records.append(
                    {**r, "attributes": {**r["attributes"], "ApproximateReceiveCount": str(count)}}
                )
        retry = {"Records": records}
        return retry, self.handler(retry, FakeLambdaContext())

    def dead_letters(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=600,
            ).get("Messages", [])
            if not got:
                return out
            out += got

    def posts(self) -> int:
        """Data POSTs the sandbox received (every attempt of the client counts)."""
        return sum(1 for r in self.sandbox.requests if r.method == "POST" and "/data/" in r.path)

    def claims_table(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.moto.client("dynamodb").scan(
            TableName=self.settings.idempotency_table
        )["Items"]
        return items


def failed(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def letter_types(letters: list[dict[str, Any]]) -> dict[str, str]:
    """original message id → error_type of its dead letters."""
    return {
        m["MessageAttributes"]["original_message_id"]["StringValue"]: m["MessageAttributes"]["error_type"][
            "StringValue"
        ]
        for m in letters
    }


def make_stack(
    moto: MotoServer,
    sandbox: MonetateSandbox,
    secret_text: str,
    *,
    max_rows: int = 500,
    schema_fetch: Callable[[Any], Callable[[str], Any]] | None = None,
    env_vars: dict[str, str] | None = None,
    failing: dict[str, tuple[str, ...]] | None = None,
    without_old_item: bool = False,
) -> Stack:
    """A fresh PostRecords stack; ``failing``: ``{"sqs": ("send_message",), "dynamodb": (...)}``."""
    res = provision(
        moto, secret_value=secret_text, prefix=f"pr{next(_prefixes)}", secret_name=f"s{next(_prefixes)}"
    )
    sandbox.add_schema(PURCHASES)
    sandbox.add_schema(VISITS)
    variables = res.function_env(
        retailer="acme",
        api_url=sandbox.url,
        HTTP_MAX_RETRIES="1",
        BATCH_MAX_ROWS=str(max_rows),
        **(env_vars or {}),
    )
    settings = RecordsSettings.from_env(variables)
    sm = moto.client("secretsmanager")

    def fetch(secret_id: str, **_: Any) -> str:
        return str(sm.get_secret_value(SecretId=secret_id)["SecretString"])

    client = build_client(settings.monetate, secrets_fetch=fetch, sleep=lambda s: None)
    sqs = moto.client("sqs")
    failing = failing or {}
    clients = {
        "sqs": Failing(sqs, *failing.get("sqs", ())),
        "dynamodb": Failing(
            moto.client("dynamodb"), *failing.get("dynamodb", ()), without_old_item=without_old_item
        ),
    }
    deps = build_deps(settings, client=client, sqs_client=clients["sqs"], dynamodb_client=clients["dynamodb"])
    if schema_fetch is not None:
        deps.schemas = SchemaCache(schema_fetch(client))
    return Stack(
        moto,
        sandbox,
        settings,
        sqs,
        res.records_queue_url,
        res.records_dlq_url,
        deps,
        make_handler(deps),
        res.records_queue_arn,
        clients,
    )
