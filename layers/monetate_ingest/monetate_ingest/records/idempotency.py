"""Per-message idempotency for PostRecords: claims on Powertools' persistence layer (``IDEMPOTENCY_TABLE``).

:class:`Claims` is what PostRecords needs (claim / complete / release); :class:`PersistenceClaims`
implements it on a Powertools persistence layer, :func:`dynamodb_claims` wires DynamoDB, and
:class:`NoClaims` switches idempotency off.

Why not ``@idempotent_function``: PostRecords merges the rows of many messages into few POSTs, so
"process this message" is not one function call whose return value could be cached. We use the
persistence layer's own primitives instead, which keep the Powertools record layout (partition
key ``id``, TTL attribute ``expiration``, status INPROGRESS/COMPLETED, in-progress expiry from the
Lambda's remaining time):

* ``claim`` — ``save_inprogress`` before any row of the message is posted. A conditional put, so two
  invocations holding the same content cannot both post it. An existing COMPLETED record means the
  content was posted already (skip it); an INPROGRESS one means another invocation holds it now
  (retry later). A claim left behind by a crashed invocation frees itself when the Lambda's
  remaining time (``in_progress_expiration``) has passed.
* ``complete`` — ``save_success`` once every row of the message is posted or dead-lettered.
* ``release`` — ``delete_record`` when the message will be retried (transient failure) or was
  dead-lettered whole, so a later redelivery or a redrive after a fix processes it again.

:class:`DeferredRecords` gathers a batch's completions and releases and writes them in parallel
once every message is settled; a write that fails is logged and never changes the outcome.

The key is a SHA-256 of the content (schema + rows + source, keys sorted), not the SQS message id:
a producer that sends the same envelope twice, and SQS redelivering one, are both caught.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

_log = logging.getLogger(__name__)

#: 24 h: longer than any SQS redelivery cycle (maxReceiveCount x visibility timeout) and than the
#: window in which producers resend. Dead-lettered messages are never recorded, so a redrive days
#: later is not affected.
DEFAULT_EXPIRES_AFTER_SECONDS = 24 * 60 * 60
KEY_PREFIX = "post_records"


class ClaimState(Enum):
    CLAIMED = "claimed"  # ours to post
    COMPLETED = "completed"  # posted before: skip
    IN_PROGRESS = "in_progress"  # another invocation holds it: retry later


class Claims(Protocol):
    """What PostRecords needs of idempotency (a fake in unit tests)."""

    def claim(self, data: dict[str, Any], remaining_ms: int | None) -> ClaimState: ...
    def complete(self, data: dict[str, Any], result: dict[str, Any]) -> None: ...
    def release(self, data: dict[str, Any], reason: Exception) -> None: ...
    def register_lambda_context(self, context: Any) -> None: ...


@dataclass
class PersistenceClaims:
    """:class:`Claims` on a Powertools persistence layer (``DynamoDBPersistenceLayer`` in AWS)."""

    persistence: BasePersistenceLayer
    config: IdempotencyConfig

    def __post_init__(self) -> None:
        # One persistence layer per config: configure() is a no-op after the first call.
        self.persistence.configure(self.config, key_prefix=KEY_PREFIX)

    def register_lambda_context(self, context: Any) -> None:
        self.config.register_lambda_context(context)

    def claim(self, data: dict[str, Any], remaining_ms: int | None) -> ClaimState:
        try:
            self.persistence.save_inprogress(data, remaining_time_in_millis=remaining_ms)
        except IdempotencyItemAlreadyExistsError as exc:
            record = exc.old_data_record
            if record is None:
                try:
                    record = self.persistence.get_record(data)
                except IdempotencyItemNotFoundError:
                    return ClaimState.IN_PROGRESS  # deleted in between: let SQS retry it
            if record is not None and record.status == "COMPLETED":
                return ClaimState.COMPLETED
            return ClaimState.IN_PROGRESS
        return ClaimState.CLAIMED

    def complete(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        self.persistence.save_success(data, result)

    def release(self, data: dict[str, Any], reason: Exception) -> None:
        self.persistence.delete_record(data, reason)


class NoClaims:
    """Idempotency switched off: every message is ours (tests and ``--no-idempotency`` tools)."""

    def claim(self, data: dict[str, Any], remaining_ms: int | None) -> ClaimState:
        return ClaimState.CLAIMED

    def complete(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        return None

    def release(self, data: dict[str, Any], reason: Exception) -> None:
        return None

    def register_lambda_context(self, context: Any) -> None:
        return None


def dynamodb_claims(
    table_name: str,
    *,
    boto3_client: Any = None,
    expires_after_seconds: int = DEFAULT_EXPIRES_AFTER_SECONDS,
) -> PersistenceClaims:
    """The production wiring: ``DynamoDBPersistenceLayer`` with the Powertools defaults."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    config = IdempotencyConfig(expires_after_seconds=expires_after_seconds, hash_function="sha256")
    layer = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=boto3_client)
    return PersistenceClaims(persistence=layer, config=config)


@dataclass
class DeferredRecords:
    """Idempotency writes of one batch, run in parallel by :meth:`flush` (see the module docstring)."""

    claims: Claims
    concurrency: int = 16
    _writes: list[Callable[[], None]] = field(default_factory=list)

    def complete(self, message_id: str, data: dict[str, Any], result: dict[str, Any]) -> None:
        """The content is done: a redelivery of it is skipped."""

        def write() -> None:
            try:
                self.claims.complete(data, result)
            except Exception as exc:  # the rows are stored; at worst a redelivery posts them again
                _log.warning("could not record message %s as done: %s", message_id, _short(exc))

        self._writes.append(write)

    def release(self, message_id: str, data: dict[str, Any], why: str) -> None:
        """Our claim goes, so a redelivery (or a redrive) is processed again."""

        def write() -> None:
            try:
                self.claims.release(data, RuntimeError(why))
            except Exception as exc:  # the claim expires with the invocation's remaining time
                _log.warning(
                    "could not release the idempotency claim of message %s: %s", message_id, _short(exc)
                )

        self._writes.append(write)

    def flush(self) -> None:
        from monetate_ingest.records.state import parallel

        writes, self._writes = self._writes, []
        parallel(lambda write: write(), writes, self.concurrency)


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
