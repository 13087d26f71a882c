"""Handling one SQS batch: decide every message, post the merged rows, settle (``process_messages``).

Rows of messages for the same schema are merged into as few POSTs as the batch limits allow. The
stages, in order: parse every body (:func:`parse_envelope`; an :class:`EnvelopeError` is
permanent); look each schema up once (unknown: permanent ``unknown_schema``); coerce the rows (a
:class:`RowError` refuses that row; every row refused: permanent); claim each message with valid
rows in the idempotency table (content already posted: skipped); post (:class:`RowPoster`); settle
(:class:`Settler`). This module holds the stages before posting.

Idempotency and redelivery (:mod:`monetate_ingest.records.idempotency`): a message's completion is
recorded only once *all* its rows are posted (or dead-lettered). A message that fails part-way — a
transient error after some of its rows were stored — is retried whole, so those rows are posted
again: delivery is at-least-once, exactly-once in effect for datasets with a unique key (Monetate
upserts them). Tracking posted row indexes per message would need a read-modify-write of the
record after every POST for a window that only a 5xx storm in the middle of a merged batch opens;
not worth the cost and the extra failure modes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from monetate_ingest.delivery.envelope import parse_envelope
from monetate_ingest.delivery.exceptions import EnvelopeError
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.exceptions import KeyRevokedError, UnknownSchemaError
from monetate_ingest.observability import logger
from monetate_ingest.records.dead_letters import (
    ROWS_REJECTED,
    UNKNOWN_SCHEMA,
    RowRefusal,
    describe_refusals,
)
from monetate_ingest.records.idempotency import ClaimState
from monetate_ingest.records.posting import RowPoster
from monetate_ingest.records.settling import Settler
from monetate_ingest.records.state import CoercedRow, Msg, Refusal, describe_error, parallel
from monetate_ingest.records.types import BatchOutcome, PostRecordsDeps

if TYPE_CHECKING:
    from monetate_ingest.formats.coercion import RowCoercer
    from monetate_ingest.monetate.schema import SchemaSpec


def process_messages(
    messages: list[tuple[str, str]],
    deps: PostRecordsDeps,
    *,
    remaining_ms: Callable[[], int | None] = lambda: None,
) -> BatchOutcome:
    """Decide the fate of every ``(message_id, body)``; post, dead-letter and record as needed."""
    msgs = [Msg(i, mid, body) for i, (mid, body) in enumerate(messages)]
    _parse(msgs)
    run = _Run(deps, remaining_ms)
    poster = RowPoster(deps, remaining_ms)
    revoked = False
    try:
        specs = run.resolve_schemas(msgs)
        coerced = run.coerce(msgs, specs)
        run.claim(msgs)
        poster.post(msgs, coerced)
    except KeyRevokedError:
        revoked = True
        deps.metrics.count("KeyRevoked", 1)
        logger.error(
            "Monetate answered 403 (API key revoked): stopped; every message of the batch will be retried",
            extra={"messages": len(msgs)},
        )
    return Settler(deps, BatchOutcome(posts=poster.posts, revoked=revoked)).settle(msgs)


def _parse(msgs: list[Msg]) -> None:
    first_of: dict[str, int] = {}
    for m in msgs:
        try:
            m.envelope = parse_envelope(m.body)
        except EnvelopeError as exc:
            m.permanent = Refusal(exc.code, exc.message)
            continue
        m.identity = m.envelope.identity()
        fingerprint = _fingerprint(m.identity)
        if fingerprint in first_of:
            m.twin = first_of[fingerprint]
        else:
            first_of[fingerprint] = m.pos


def _fingerprint(identity: Mapping[str, Any]) -> str:
    return json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)


class _Run:
    """One invocation's pre-pass up to the POSTs: schemas, coercion, idempotency claims."""

    def __init__(self, deps: PostRecordsDeps, remaining_ms: Callable[[], int | None]) -> None:
        self.deps = deps
        self.remaining_ms = remaining_ms

    def resolve_schemas(self, msgs: list[Msg]) -> dict[str, SchemaSpec]:
        specs: dict[str, SchemaSpec] = {}
        failed: dict[str, Refusal | str] = {}
        for name in dict.fromkeys(m.schema for m in _live(msgs) if m.schema):
            try:
                specs[name] = self.deps.schemas.get(name)
            except KeyRevokedError:
                raise
            except UnknownSchemaError as exc:
                failed[name] = Refusal(UNKNOWN_SCHEMA, str(exc))
            except Exception as exc:  # transient or unexpected: SQS retries, maxReceiveCount bounds it
                failed[name] = describe_error(exc)
                logger.warning(
                    "schema lookup failed; its messages will be retried",
                    extra={"schema": name, "error": describe_error(exc)},
                )
        for m in _live(msgs):
            problem = failed.get(m.schema or "")
            if isinstance(problem, Refusal):
                m.permanent = problem
            elif problem is not None:
                m.transient = f"schema lookup failed: {problem}"
        return specs

    def coerce(self, msgs: list[Msg], specs: dict[str, SchemaSpec]) -> dict[str, list[CoercedRow]]:
        from monetate_ingest.formats.coercion import compile_coercer

        policy: Any = "reject" if self.deps.rows.unknown_columns == "add" else self.deps.rows.unknown_columns
        coercers: dict[str, RowCoercer] = {}
        out: dict[str, list[CoercedRow]] = {}
        for m in _live(msgs):
            assert m.envelope is not None
            name = m.envelope.schema
            coercer = coercers.get(name)
            if coercer is None:
                coercer = coercers[name] = compile_coercer(
                    specs[name], None, unknown=policy, naive_tz=self.deps.rows.naive_datetime_tz
                )
            good: list[CoercedRow] = []
            for i, raw in enumerate(m.envelope.rows):
                try:
                    good.append(CoercedRow(m.pos, i, coercer.coerce(raw)))
                except RowError as exc:
                    m.refusals[i] = RowRefusal(i, exc.reason, exc.field)
            if not good:
                m.permanent = Refusal(
                    ROWS_REJECTED,
                    describe_refusals(list(m.refusals.values()), total=len(m.envelope.rows), posted=0),
                )
            else:
                out.setdefault(name, []).extend(good)
        return out

    def claim(self, msgs: list[Msg]) -> None:
        """One conditional put per message, in parallel (a round-trip each would dominate)."""
        todo = [m for m in _live(msgs) if m.identity is not None]

        def claim_one(m: Msg) -> ClaimState | Exception:
            assert m.identity is not None
            try:
                return self.deps.claims.claim(m.identity, self.remaining_ms())
            except Exception as exc:
                return exc

        for m, state in zip(todo, parallel(claim_one, todo, self.deps.idempotency_concurrency), strict=True):
            if isinstance(state, Exception):
                m.transient = f"idempotency record unavailable: {describe_error(state)}"
            elif state is ClaimState.CLAIMED:
                m.claimed = True
            elif state is ClaimState.COMPLETED:
                m.skipped = True
            else:
                m.transient = "another invocation is processing the same content"


def _live(msgs: list[Msg]) -> list[Msg]:
    """Messages still in play: parsed, not a twin, not yet decided."""
    return [
        m
        for m in msgs
        if m.envelope is not None
        and m.twin is None
        and m.permanent is None
        and m.transient is None
        and not m.skipped
    ]


class MessageRetry(Exception):
    """Raised by the record handler for a message SQS must deliver again."""

    def __init__(self, message_id: str, reason: str) -> None:
        super().__init__(f"message {message_id} will be retried: {reason}")
