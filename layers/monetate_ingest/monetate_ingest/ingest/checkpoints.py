"""File checkpoints in the idempotency table, under their own key prefix.

A checkpoint says how far a file got: the rows finished in order (``rows_done``, always a unit
boundary), the units finished beyond that point while earlier ones were still in flight, the report
so far, and the reject parts already in S3. A later invocation — a continuation, or a retry after a
crash — resumes from it without posting those rows again. ``saves`` counts the saves, so that of
two copies (the table's, and the S3 backup written when the table failed) the newer one wins.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from monetate_ingest.ingest.exceptions import StateStoreError, describe_aws_error

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
    saves: int = 0
    #: Reject lines not yet in S3 (S3 failed when the file did): written with the next part.
    pending_rejects: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def newest(*checkpoints: Checkpoint | None) -> Checkpoint | None:
    """The checkpoint saved last (most ``saves``), or None."""
    found = [cp for cp in checkpoints if cp is not None]
    return max(found, key=lambda cp: cp.saves) if found else None


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
        try:
            item = self.client.get_item(
                TableName=self.table, Key={"id": {"S": PREFIX + identity}}, ConsistentRead=True
            ).get("Item")
        except Exception as exc:  # botocore's errors, named for the report
            raise self._error("read", exc) from exc
        if not item:
            return None
        return Checkpoint.from_json(item["state"]["S"])

    def save(self, identity: str, checkpoint: Checkpoint) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={
                    "id": {"S": PREFIX + identity},
                    "state": {"S": checkpoint.to_json()},
                    "expiration": {"N": str(int(time.time()) + TTL_SECONDS)},
                },
            )
        except Exception as exc:
            raise self._error("write", exc) from exc

    def _error(self, verb: str, exc: Exception) -> StateStoreError:
        return StateStoreError(
            f"could not {verb} the file's checkpoint in DynamoDB table {self.table!r} "
            f"(IDEMPOTENCY_TABLE): {describe_aws_error(exc)}",
            table=self.table,
        )


class MemoryCheckpointStore:
    """In-memory store for unit tests."""

    def __init__(self) -> None:
        self.items: dict[str, str] = {}
        self.saves = 0

    def load(self, identity: str) -> Checkpoint | None:
        raw = self.items.get(identity)
        return Checkpoint.from_json(raw) if raw else None

    def save(self, identity: str, checkpoint: Checkpoint) -> None:
        self.saves += 1
        self.items[identity] = checkpoint.to_json()
