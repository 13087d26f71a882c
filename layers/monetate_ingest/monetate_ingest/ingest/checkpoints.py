"""File checkpoints in the idempotency table, under their own key prefix.

A checkpoint says how far a file got: the rows finished in order (``rows_done``, always a unit
boundary), the units finished beyond that point while earlier ones were still in flight, the report
so far, and the reject parts already in S3. A later invocation — a continuation, or a retry after a
crash — resumes from it without posting those rows again.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

PREFIX = "checkpoint#"
TTL_SECONDS = 14 * 24 * 3600


@dataclass
class Checkpoint:
    rows_done: int = 0
    next_unit: int = 0
    #: unit number → its ``UnitOutcome.to_dict()``: units finished while earlier ones were in flight
    done_beyond: dict[str, dict[str, Any]] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    reject_parts: list[str] = field(default_factory=list)
    columns: list[str] | None = None
    invocation: int = 0
    finished: bool = False


class CheckpointStore(Protocol):
    def load(self, identity: str) -> Checkpoint | None: ...
    def save(self, identity: str, checkpoint: Checkpoint) -> None: ...


class DynamoCheckpointStore:
    """Checkpoints as one item each: ``id`` = ``checkpoint#bucket/key#etag``, TTL ``expiration``."""

    def __init__(self, table: str, client: Any = None) -> None:
        self.table = table
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("dynamodb")
        return self._client

    def load(self, identity: str) -> Checkpoint | None:
        item = self.client.get_item(
            TableName=self.table, Key={"id": {"S": PREFIX + identity}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        return Checkpoint(**json.loads(item["state"]["S"]))

    def save(self, identity: str, checkpoint: Checkpoint) -> None:
        self.client.put_item(
            TableName=self.table,
            Item={
                "id": {"S": PREFIX + identity},
                "state": {"S": json.dumps(asdict(checkpoint), separators=(",", ":"))},
                "expiration": {"N": str(int(time.time()) + TTL_SECONDS)},
            },
        )


class MemoryCheckpointStore:
    """In-memory store for unit tests."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.saves = 0

    def load(self, identity: str) -> Checkpoint | None:
        raw = self.items.get(identity)
        return Checkpoint(**json.loads(raw)) if raw else None

    def save(self, identity: str, checkpoint: Checkpoint) -> None:
        self.saves += 1
        self.items[identity] = json.dumps(asdict(checkpoint))
