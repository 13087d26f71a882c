"""The operator's calls on the DynamoDB ledger: count (``status``) or delete (``forget``) one schema.

DynamoDB has no prefix query on a partition key, so both **Scan the whole table** with
``FilterExpression begins_with(id, :scope)`` and a projection. A scan reads, and bills, every item
of the table whatever the filter keeps: 0.5 RRU per 4 KB (1 RRU strongly consistent, as
``forget``'s is), so about 17,000 RRU (33,000) for a table of a million 137-byte entries, well
under $0.01 on demand, and seconds to a minute. Deletes (1 WRU each) go out as BatchWriteItem of
25 keys, their ``UnprocessedItems`` retried with bounded jittered backoff. Unlike the writers'
lookups and writes these raise :class:`LedgerAdminError`, naming the table and the AWS error code:
an operator must know.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from monetate_ingest.errors import ErrorKind, MonetateIngestError
from monetate_ingest.sync.ledger import LedgerStatus

#: DynamoDB's limit of requests per BatchWriteItem.
WRITE_BATCH = 25
_FILTER = "begins_with(#id, :scope)"
_HINTS = {
    "ResourceNotFoundException": "no such table in this account and region (check SYNC_LEDGER_TABLE, "
    "--profile and --region)",
    "AccessDeniedException": "this AWS identity may not make that call (the README lists the operator's IAM)",
    "UnrecognizedClientException": "the AWS credentials are not valid",
    "NoCredentialsError": "no AWS credentials found",
}


class LedgerAdminError(MonetateIngestError):
    """An operator call on the ledger table failed; the message names the table and the AWS code.
    Never retried by the code (botocore already retried throttling): the operator fixes and reruns."""

    kind: ClassVar[ErrorKind] = "configuration"

    def __init__(self, message: str, *, table: str, code: str) -> None:
        super().__init__(message)
        self.table = table
        self.code = code


def _failed(table: str, doing: str, code: str, detail: str = "") -> LedgerAdminError:
    hint = _HINTS.get(code, "")
    text = f"the sync ledger table {table!r} (SYNC_LEDGER_TABLE) could not be {doing}: {code}"
    if hint:
        text += f" ({hint})"
    if detail:
        text += f": {detail}"
    return LedgerAdminError(text, table=table, code=code)


def _call(table: str, doing: str, fn: Callable[..., Any], **kw: Any) -> Any:
    """``fn(**kw)``; a botocore error becomes a :class:`LedgerAdminError` (no key or value in it)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(**kw)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise _failed(
            table, doing, str(error.get("Code", "ClientError")), str(error.get("Message", ""))
        ) from None
    except BotoCoreError as exc:
        raise _failed(table, doing, type(exc).__name__, str(exc)) from None


def scan_scope(
    client: Any,
    table: str,
    scope: str,
    projection: str,
    *,
    page_size: int | None = None,
    consistent: bool = False,
) -> Iterator[list[dict[str, Any]]]:
    """The items of one scope, a scan page at a time (``page_size``: Scan's ``Limit``, items read
    per page before the filter; None: DynamoDB's 1 MB pages). ``projection`` may say ``#id``."""
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": _FILTER,
        "ProjectionExpression": projection,
        "ExpressionAttributeNames": {"#id": "id"},
        "ExpressionAttributeValues": {":scope": {"S": scope + "."}},
        "ConsistentRead": consistent,
    }
    if page_size is not None:
        request["Limit"] = page_size
    while True:
        page = _call(table, "scanned", client.scan, **request)
        yield list(page.get("Items", []))
        start = page.get("LastEvaluatedKey")
        if not start:
            return
        request["ExclusiveStartKey"] = start


def scope_status(client: Any, table: str, scope: str, *, page_size: int | None = None) -> LedgerStatus:
    """How many entries one scope holds, and its oldest and newest posting time (one full scan)."""
    pages = scan_scope(client, table, scope, "#id, pa", page_size=page_size)
    return LedgerStatus.of(float(item["pa"]["N"]) for items in pages for item in items)


class Deleter:
    """Deletes keys of the ledger table in BatchWriteItem calls of at most 25, retrying unprocessed ones."""

    def __init__(
        self, client: Any, table: str, *, max_attempts: int, base_delay: float, sleep: Callable[[float], None]
    ) -> None:
        self.client = client
        self.table = table
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.sleep = sleep
        self.deleted = 0

    def delete(self, key_ids: list[str]) -> None:
        for start in range(0, len(key_ids), WRITE_BATCH):
            self._batch(key_ids[start : start + WRITE_BATCH])

    def _batch(self, key_ids: list[str]) -> None:
        pending = [{"DeleteRequest": {"Key": {"id": {"S": k}}}} for k in key_ids]
        for attempt in range(self.max_attempts):
            answer = _call(
                self.table, "deleted from", self.client.batch_write_item, RequestItems={self.table: pending}
            )
            left = (answer.get("UnprocessedItems") or {}).get(self.table) or []
            self.deleted += len(pending) - len(left)
            pending = left
            if not pending:
                return
            if attempt + 1 < self.max_attempts:
                self.sleep(random.uniform(0, min(2.0, self.base_delay * 2**attempt)))  # jitter, not security
        raise _failed(
            self.table,
            "deleted from",
            "UnprocessedItems",
            f"{len(pending)} deletes still unprocessed after {self.max_attempts} attempts (throughput "
            f"exceeded); {self.deleted:,} entries were dropped so far, run the command again",
        )


def forget_scope(
    client: Any, table: str, scope: str, deleter: Deleter, *, page_size: int | None = None
) -> int:
    """Delete every entry of one scope, page by page (strongly consistent scan); the number dropped."""
    for items in scan_scope(client, table, scope, "#id", page_size=page_size, consistent=True):
        deleter.delete([item["id"]["S"] for item in items])
    return deleter.deleted
