"""The stages before PostRecords posts: parse each body, look its schema up, coerce its rows, claim it.

Each stage decides for one message at a time and catches at that boundary whatever it raises, so
one message's problem is that message's fate only: an :class:`EnvelopeError` (bad JSON, nesting
too deep, not an envelope, an invalid schema name) or an unknown schema dead-letters it; a row that
fails coercion is refused (every row refused: the message is); a transient failure (the schema
lookup, the idempotency table) retries it; an unexpected exception — a bug — retries it too, logged
with its message id and the exception type. Only a revoked key (403) stops everything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from monetate_ingest.delivery.envelope import INVALID_SCHEMA, parse_envelope
from monetate_ingest.delivery.exceptions import EnvelopeError
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate import exceptions as api
from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import ROWS_REJECTED, UNKNOWN_SCHEMA, RowRefusal, describe_refusals
from monetate_ingest.records.idempotency import ClaimState
from monetate_ingest.records.state import CoercedRow, Msg, Refusal, describe_error, parallel

if TYPE_CHECKING:
    from monetate_ingest.monetate.schema import SchemaSpec
    from monetate_ingest.records.types import PostRecordsDeps, RowCoercer


def parse(msgs: list[Msg]) -> None:
    """Each body's envelope and content identity; identical content later in the batch is a twin."""
    first_of: dict[str, int] = {}
    for m in msgs:
        try:
            m.envelope = parse_envelope(m.body)
            m.identity = m.envelope.identity()
            fingerprint = json.dumps(m.identity, sort_keys=True, separators=(",", ":"), default=str)
        except EnvelopeError as exc:
            m.envelope, m.permanent = None, Refusal(exc.code, exc.message)
            continue
        except Exception as exc:
            m.envelope = None
            _unexpected(m, "reading the message", exc)
            continue
        if fingerprint in first_of:
            m.twin = first_of[fingerprint]
        else:
            first_of[fingerprint] = m.pos


def live(msgs: list[Msg]) -> list[Msg]:
    """Messages still in play: parsed, not a twin, not yet decided."""
    return [m for m in msgs if m.envelope is not None and m.twin is None and not m.decided]


class Intake:
    """One invocation's schema lookups, coercion and idempotency claims."""

    def __init__(self, deps: PostRecordsDeps, remaining_ms: Callable[[], int | None]) -> None:
        self.deps = deps
        self.remaining_ms = remaining_ms

    def resolve_schemas(self, msgs: list[Msg]) -> dict[str, SchemaSpec]:
        """Each schema looked up once; its messages share the outcome."""
        specs: dict[str, SchemaSpec] = {}
        failed: dict[str, Refusal | str] = {}
        for name in dict.fromkeys(m.schema for m in live(msgs) if m.schema):
            try:
                specs[name] = self.deps.schemas.get(name)
            except api.KeyRevokedError:
                raise
            except api.UnknownSchemaError as exc:
                code = INVALID_SCHEMA if isinstance(exc, api.InvalidSchemaNameError) else UNKNOWN_SCHEMA
                failed[name] = Refusal(code, str(exc))
            except Exception as exc:  # transient or unexpected: SQS retries, maxReceiveCount bounds it
                failed[name] = f"schema lookup failed: {describe_error(exc)}"
                logger.warning(
                    "schema lookup failed; its messages will be retried",
                    extra={"schema": name, "error": describe_error(exc)},
                )
        for m in live(msgs):
            problem = failed.get(m.schema or "")
            if isinstance(problem, Refusal):
                m.permanent = problem
            elif problem is not None:
                m.retry(problem)
        return specs

    def coerce(self, msgs: list[Msg], specs: dict[str, SchemaSpec]) -> dict[str, list[CoercedRow]]:
        """Each message's rows against its schema; refused rows noted, the good ones returned."""
        coercers: dict[str, RowCoercer] = {}
        out: dict[str, list[CoercedRow]] = {}
        for m in live(msgs):
            assert m.envelope is not None
            name = m.envelope.schema
            try:
                coercer = coercers.get(name) or coercers.setdefault(
                    name, self.deps.coercer(specs[name], self.deps.rows)
                )
                good = self._coerce_one(m, coercer)
            except Exception as exc:  # a bug must not sink the batch: this message is retried
                m.refusals.clear()
                _unexpected(m, "coercing its rows", exc)
                continue
            if not good:
                reason = describe_refusals(list(m.refusals.values()), total=m.rows_total, posted=0)
                m.permanent = Refusal(ROWS_REJECTED, reason)
            else:
                out.setdefault(name, []).extend(good)
        return out

    @staticmethod
    def _coerce_one(m: Msg, coercer: RowCoercer) -> list[CoercedRow]:
        assert m.envelope is not None
        good: list[CoercedRow] = []
        for i, raw in enumerate(m.envelope.rows):
            try:
                good.append(CoercedRow(m.pos, i, coercer.coerce(raw)))
            except RowError as exc:
                m.refusals[i] = RowRefusal(i, exc.reason, exc.field)
        return good

    def claim(self, msgs: list[Msg]) -> None:
        """One conditional put per message, in parallel (a round-trip each would dominate)."""
        todo = [m for m in live(msgs) if m.identity is not None]

        def claim_one(m: Msg) -> ClaimState | Exception:
            assert m.identity is not None
            try:
                return self.deps.claims.claim(m.identity, self.remaining_ms())
            except Exception as exc:
                return exc

        for m, state in zip(todo, parallel(claim_one, todo, self.deps.idempotency_concurrency), strict=True):
            if isinstance(state, Exception):
                m.retry(f"idempotency record unavailable: {describe_error(state)}")
                logger.warning(
                    "could not claim the message in the idempotency table; it will be retried",
                    extra={"message_id": m.message_id, "error": describe_error(state)},
                )
            elif state is ClaimState.CLAIMED:
                m.claimed = True
            elif state is ClaimState.COMPLETED:
                m.skipped = True
            else:
                m.retry("another invocation is processing the same content")


def _unexpected(m: Msg, doing: str, exc: Exception) -> None:
    """A bug met while handling one message: log it with the message id, retry the message."""
    logger.exception(
        f"unexpected error while {doing}; the message will be retried",
        extra={"message_id": m.message_id, "error_type": type(exc).__name__},
    )
    m.retry(f"internal error while {doing} ({describe_error(exc)})")
