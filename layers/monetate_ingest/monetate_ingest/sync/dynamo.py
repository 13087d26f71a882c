"""The ledger in DynamoDB: one item per record key, read with BatchGetItem, written per item.

Per-item conditional ``PutItem`` in a thread pool, because ``BatchWriteItem`` takes no condition
and an older write must never replace a newer entry; the figures that chose this over grouped
items and an S3 snapshot are in ``bench/bench_sync.py`` and the README. Item attributes: ``id``
(the hashed key), ``e`` (the whole entry packed in one binary: fingerprint, posted at, source
time, line, origin — what a lookup reads: botocore parses one attribute per item instead of six,
28 → 7 µs of CPU per item), ``pa`` (posted at, for the operator's ``status``), ``st``/``so``/``sl``
(source time, origin, line: what the write's condition compares) and ``expiration`` (TTL). The
operator's ``status`` and ``forget`` scan the whole table (``dynamo_admin``: there is no prefix
query on a partition key).
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from monetate_ingest.aws.clients import LazyClient
from monetate_ingest.observability import logger
from monetate_ingest.sync.dynamo_admin import Deleter, forget_scope, scope_status
from monetate_ingest.sync.entries import LedgerEntry, SourceTime
from monetate_ingest.sync.ledger import LedgerStatus, Lookup, WriteOutcome, expiration, newest_per_key

#: DynamoDB's limit of keys per BatchGetItem.
GET_BATCH = 100
#: Written unless the stored entry's source is newer (see ``SourceTime.older_than``).
NOT_NEWER = "attribute_not_exists(id) OR st < :st OR (st = :st AND (so <> :so OR sl <= :sl))"
_PROJECTION = "id, e"
#: ``e``: fingerprint (16 bytes), posted at, source time (float64), line (uint32), then the origin.
_PACKED = struct.Struct(">16sddI")
T = TypeVar("T")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def to_item(entry: LedgerEntry, full_every_days: int) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values) of an entry."""
    return {
        "id": {"S": entry.key_id},
        "e": {"B": pack(entry)},
        "pa": {"N": _number(entry.posted_at)},
        "st": {"N": _number(entry.source.time)},
        "so": {"S": entry.source.origin},
        "sl": {"N": str(entry.source.line)},
        "expiration": {"N": str(expiration(entry, full_every_days))},
    }


def from_item(item: dict[str, Any]) -> LedgerEntry:
    """The entry of an item as a lookup reads it (``id`` and ``e``)."""
    return unpack(item["id"]["S"], item["e"]["B"])


def pack(entry: LedgerEntry) -> bytes:
    """The entry as the ``e`` attribute."""
    source = entry.source
    return _PACKED.pack(entry.fingerprint, entry.posted_at, source.time, source.line) + source.origin.encode()


def unpack(key_id: str, data: bytes) -> LedgerEntry:
    fingerprint, posted_at, time_, line = _PACKED.unpack_from(data)
    origin = bytes(data[_PACKED.size :]).decode()
    return LedgerEntry(key_id, fingerprint, posted_at, SourceTime(time_, origin, line))


class DynamoLedger:
    """The ledger table ``SYNC_LEDGER_TABLE``; the writers' store failures are logged and counted,
    never raised (the operator's :meth:`status` and :meth:`forget` do raise).

    ``client`` is a boto3 DynamoDB client (default: made on first use). Reads are strongly
    consistent, so a row is never compared with an entry older than one already written.
    ``scan_page``: the operator scans' ``Limit`` (None: DynamoDB's 1 MB pages).
    """

    def __init__(
        self,
        table: str,
        *,
        client: Any = None,
        workers: int = 16,
        max_attempts: int = 6,
        base_delay: float = 0.05,
        sleep: Callable[[float], None] = time.sleep,
        scan_page: int | None = None,
    ) -> None:
        self.table = table
        self.scan_page = scan_page
        self._client = client if client is not None else LazyClient("dynamodb")
        self._workers = workers
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._sleep = sleep
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="sync-ledger")
        return self._pool

    def _map(self, fn: Callable[[Any], T], items: list[Any]) -> Iterator[T]:
        """``fn`` over ``items``: in the pool when there is more than one."""
        return self._executor().map(fn, items) if len(items) > 1 else map(fn, items)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # --- reads ------------------------------------------------------------------------------

    def lookup(self, key_ids: Collection[str]) -> Lookup:
        unique = list(dict.fromkeys(key_ids))
        result = Lookup()
        chunks = list(_chunks(unique, GET_BATCH))
        parts = self._map(self._get_chunk, chunks)
        for part in parts:
            result.entries.update(part.entries)
            result.failed += part.failed
        return result

    def _get_chunk(self, key_ids: list[str]) -> Lookup:
        """One BatchGetItem of at most 100 distinct keys, its ``UnprocessedKeys`` retried.

        botocore retries throttled and failed calls, but not a partial success: the keys DynamoDB
        hands back unprocessed are retried here, with capped jittered backoff and a bound.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        found: dict[str, LedgerEntry] = {}
        request: dict[str, Any] = {
            self.table: {
                "Keys": [{"id": {"S": k}} for k in key_ids],
                "ConsistentRead": True,
                "ProjectionExpression": _PROJECTION,
            }
        }
        for attempt in range(self._max_attempts):
            try:
                response = self._client.batch_get_item(RequestItems=request)
            except (BotoCoreError, ClientError) as exc:
                left = len(request[self.table]["Keys"])
                logger.warning("sync ledger lookup failed", extra=_failure(self.table, exc, left))
                return Lookup(found, left)
            for item in response.get("Responses", {}).get(self.table, []):
                entry = from_item(item)
                found[entry.key_id] = entry
            unprocessed = response.get("UnprocessedKeys", {}).get(self.table)
            if not unprocessed or not unprocessed.get("Keys"):
                return Lookup(found)
            request = {self.table: unprocessed}
            if attempt + 1 < self._max_attempts:
                self._sleep(self._delay(attempt))
        left = len(request[self.table]["Keys"])
        logger.warning("sync ledger lookup left keys unprocessed", extra={"table": self.table, "keys": left})
        return Lookup(found, left)

    def _delay(self, attempt: int) -> float:
        return random.uniform(0, min(2.0, self._base_delay * 2**attempt))  # jitter, not security

    # --- writes -----------------------------------------------------------------------------

    def record(self, entries: Sequence[LedgerEntry], full_every_days: int) -> WriteOutcome:
        unique = newest_per_key(entries)
        outcome = WriteOutcome(kept_newer=len(entries) - len(unique))
        items = [to_item(e, full_every_days) for e in unique]
        results = self._map(self._put, items)
        errors: dict[str, int] = {}
        for result in results:
            if result == "written":
                outcome.written += 1
            elif result == "kept_newer":
                outcome.kept_newer += 1
            else:
                outcome.failed += 1
                errors[result] = errors.get(result, 0) + 1
        if errors:
            logger.warning("sync ledger writes failed", extra={"table": self.table, "errors": errors})
        return outcome

    def _put(self, item: dict[str, Any]) -> str:
        """``written``, ``kept_newer`` or the failure's error code."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=NOT_NEWER,
                ExpressionAttributeValues={":st": item["st"], ":so": item["so"], ":sl": item["sl"]},
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            return "kept_newer" if code == "ConditionalCheckFailedException" else code
        except BotoCoreError as exc:
            return type(exc).__name__
        return "written"

    # --- the operator's (these raise LedgerAdminError) ---------------------------------------

    def status(self, scope: str) -> LedgerStatus:
        """One schema's entries and their oldest and newest post. Scans (and bills) the whole table."""
        return scope_status(self._client, self.table, scope, page_size=self.scan_page)

    def forget(self, scope: str) -> int:
        """Delete one schema's entries (BatchWriteItem of 25); the number dropped. Scans the whole table."""
        deleter = Deleter(
            self._client,
            self.table,
            max_attempts=self._max_attempts,
            base_delay=self._base_delay,
            sleep=self._sleep,
        )
        return forget_scope(self._client, self.table, scope, deleter, page_size=self.scan_page)


def _failure(table: str, exc: Exception, keys: int) -> dict[str, Any]:
    """Log fields of a failed call: the table, the error's class and code, never a key."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return {"table": table, "error": type(exc).__name__, "code": code, "keys": keys}
