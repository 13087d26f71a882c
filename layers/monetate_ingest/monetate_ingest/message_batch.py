"""The PostRecords pre-pass: decide every message of one SQS batch, post merged rows, settle.

Rows of messages for the same schema are merged into as few POSTs as the batch limits allow:

1. parse every body (:func:`parse_envelope`; an :class:`EnvelopeError` is permanent);
2. look each schema up once (unknown → permanent ``unknown_schema``);
3. coerce the rows (a :class:`RowError` refuses that row; every row refused → permanent);
4. claim each message with valid rows in the idempotency table (content already posted → skip);
5. merge the claimed rows per schema (:class:`Batcher`, tag = global row index) and
   :func:`post_with_bisection` each batch; rows Monetate refuses with 400 are found by bisection;
6. settle each message: all rows posted → success; some refused → the valid ones posted and an
   envelope of the refused ones dead-lettered (``rows_rejected``); permanent → the original body
   dead-lettered byte for byte; transient → retried by SQS.

Idempotency and redelivery (see :mod:`.message_idempotency`): a message's completion is recorded
only once *all* its rows are posted (or dead-lettered). A message that fails part-way — a transient
error after some of its rows were stored — is retried whole, so those rows are posted again:
delivery is at-least-once, exactly-once in effect for datasets with a unique key (Monetate upserts
them). Tracking posted row indexes per message would need a read-modify-write of the record after
every POST for a window that only a 5xx storm in the middle of a merged batch opens; not worth
the cost and the extra failure modes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .dead_letters import (
    ROWS_REJECTED,
    UNKNOWN_SCHEMA,
    DeadLetter,
    DeadLetterSink,
    RowRefusal,
    describe_refusals,
    refused_rows_letter,
)
from .envelope import Envelope, parse_envelope
from .errors import EnvelopeError, KeyRevokedError, RowError, UnknownSchemaError
from .message_idempotency import Claims, ClaimState
from .observability import logger, metrics

if TYPE_CHECKING:
    from .batching import Batch
    from .coercion import RowCoercer
    from .schema import SchemaSpec

T = TypeVar("T")
R = TypeVar("R")


class MonetateApi(Protocol):
    """What PostRecords needs of :class:`MonetateClient`."""

    def post_body(self, schema: str, body: bytes) -> Any: ...


class SchemaSource(Protocol):
    def get(self, name: str) -> SchemaSpec: ...


class MetricsSink(Protocol):
    def count(self, name: str, value: int, *, schema: str | None = None) -> None: ...


class PowertoolsMetricsSink:
    """Counts on the shared Powertools ``metrics`` (flushed by ``@metrics.log_metrics`` on the handler);
    per-schema counts go out at once on their own EMF line with a ``schema`` dimension."""

    def count(self, name: str, value: int, *, schema: str | None = None) -> None:
        from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

        if schema is None:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            return
        service = metrics.service or "monetate-ingest"
        per_schema = EphemeralMetrics(namespace=metrics.namespace, service=service)
        per_schema.add_dimension(name="schema", value=schema)
        per_schema.add_metric(name=name, unit=MetricUnit.Count, value=value)
        per_schema.flush_metrics()


@dataclass
class PostRecordsDeps:
    """Everything the handler talks to; build with :func:`build_deps` or fakes in tests."""

    client: MonetateApi
    schemas: SchemaSource
    dead_letters: DeadLetterSink
    claims: Claims
    batch_max_rows: int = 500
    batch_max_bytes: int = 1_000_000
    unknown_columns: str = "reject"
    naive_tz: str = "UTC"
    metrics: MetricsSink = field(default_factory=PowertoolsMetricsSink)
    #: Stop taking new POSTs when less than this is left of the invocation (the rest is retried).
    deadline_margin_ms: int = 10_000
    #: Idempotency reads/writes in flight at once (one DynamoDB round-trip per message otherwise).
    idempotency_concurrency: int = 16


@dataclass
class BatchOutcome:
    """Per message id: why it must be retried (``failures``) or what became of it (``results``)."""

    failures: dict[str, str] = field(default_factory=dict)
    results: dict[str, str] = field(default_factory=dict)
    posts: int = 0
    revoked: bool = False


@dataclass
class _Msg:
    pos: int
    message_id: str
    body: str
    envelope: Envelope | None = None
    identity: dict[str, Any] | None = None
    twin: int | None = None  # an identical message earlier in this batch
    permanent: tuple[str, str] | None = None  # (error_type, error_message) for the whole message
    transient: str | None = None
    claimed: bool = False
    skipped: bool = False  # posted before (idempotency record COMPLETED)
    refusals: dict[int, RowRefusal] = field(default_factory=dict)
    queued: set[int] = field(default_factory=set)  # row indexes handed to the batcher
    posted: set[int] = field(default_factory=set)

    @property
    def schema(self) -> str | None:
        return self.envelope.schema if self.envelope else None


def process_messages(
    messages: list[tuple[str, str]],
    deps: PostRecordsDeps,
    *,
    remaining_ms: Callable[[], int | None] = lambda: None,
) -> BatchOutcome:
    """Decide the fate of every ``(message_id, body)``; post, dead-letter and record as needed."""
    msgs = [_Msg(i, mid, body) for i, (mid, body) in enumerate(messages)]
    _parse(msgs)
    run = _Run(deps, remaining_ms)
    try:
        specs = run.resolve_schemas(msgs)
        coerced = run.coerce(msgs, specs)
        run.claim(msgs)
        run.post(msgs, coerced)
    except KeyRevokedError:
        run.revoked = True
        deps.metrics.count("KeyRevoked", 1)
        logger.error(
            "Monetate answered 403 (API key revoked): stopped; every message of the batch will be retried",
            extra={"messages": len(msgs)},
        )
    return run.settle(msgs)


def _parse(msgs: list[_Msg]) -> None:
    first_of: dict[str, int] = {}
    for m in msgs:
        try:
            m.envelope = parse_envelope(m.body)
        except EnvelopeError as exc:
            m.permanent = (exc.code, exc.message)
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
    """State of one invocation's pre-pass."""

    def __init__(self, deps: PostRecordsDeps, remaining_ms: Callable[[], int | None]) -> None:
        self.deps = deps
        self.remaining_ms = remaining_ms
        self.revoked = False
        self.posts = 0
        self.owners: list[tuple[int, int]] = []  # tag → (message pos, row index)
        self._records: list[Callable[[], None]] = []  # idempotency writes, run in parallel at the end

    # 2. schemas
    def resolve_schemas(self, msgs: list[_Msg]) -> dict[str, SchemaSpec]:
        specs: dict[str, SchemaSpec] = {}
        failed: dict[str, tuple[str, str] | str] = {}
        for name in dict.fromkeys(m.schema for m in _live(msgs) if m.schema):
            try:
                specs[name] = self.deps.schemas.get(name)
            except KeyRevokedError:
                raise
            except UnknownSchemaError as exc:
                failed[name] = (UNKNOWN_SCHEMA, str(exc))
            except Exception as exc:  # transient or unexpected: SQS retries, maxReceiveCount bounds it
                failed[name] = _describe(exc)
                logger.warning(
                    "schema lookup failed; its messages will be retried",
                    extra={"schema": name, "error": _describe(exc)},
                )
        for m in _live(msgs):
            problem = failed.get(m.schema or "")
            if isinstance(problem, tuple):
                m.permanent = problem
            elif problem is not None:
                m.transient = f"schema lookup failed: {problem}"
        return specs

    # 3. coercion
    def coerce(
        self, msgs: list[_Msg], specs: dict[str, SchemaSpec]
    ) -> dict[str, list[tuple[int, int, dict[str, Any]]]]:
        from .coercion import compile_coercer

        policy: Any = "reject" if self.deps.unknown_columns == "add" else self.deps.unknown_columns
        coercers: dict[str, RowCoercer] = {}
        out: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
        for m in _live(msgs):
            assert m.envelope is not None
            name = m.envelope.schema
            coercer = coercers.get(name)
            if coercer is None:
                coercer = coercers[name] = compile_coercer(
                    specs[name], None, unknown=policy, naive_tz=self.deps.naive_tz
                )
            good: list[tuple[int, int, dict[str, Any]]] = []
            for i, raw in enumerate(m.envelope.rows):
                try:
                    good.append((m.pos, i, coercer.coerce(raw)))
                except RowError as exc:
                    m.refusals[i] = RowRefusal(i, exc.reason, exc.field)
            if not good:
                m.permanent = (
                    ROWS_REJECTED,
                    describe_refusals(list(m.refusals.values()), total=len(m.envelope.rows), posted=0),
                )
            else:
                out.setdefault(name, []).extend(good)
        return out

    # 4. idempotency claims
    def claim(self, msgs: list[_Msg]) -> None:
        """One conditional put per message, in parallel (a round-trip each would dominate)."""
        todo = [m for m in _live(msgs) if m.identity is not None]

        def claim_one(m: _Msg) -> ClaimState | Exception:
            assert m.identity is not None
            try:
                return self.deps.claims.claim(m.identity, self.remaining_ms())
            except Exception as exc:
                return exc

        for m, state in zip(todo, _parallel(claim_one, todo, self.deps.idempotency_concurrency), strict=True):
            if isinstance(state, Exception):
                m.transient = f"idempotency record unavailable: {_describe(state)}"
            elif state is ClaimState.CLAIMED:
                m.claimed = True
            elif state is ClaimState.COMPLETED:
                m.skipped = True
            else:
                m.transient = "another invocation is processing the same content"

    # 5. merge and post
    def post(self, msgs: list[_Msg], coerced: dict[str, list[tuple[int, int, dict[str, Any]]]]) -> None:
        from .batching import Batcher

        by_pos = {m.pos: m for m in msgs}
        for schema, rows in coerced.items():
            batcher = Batcher(self.deps.batch_max_rows, self.deps.batch_max_bytes)
            batches: list[Batch] = []
            for pos, index, row in rows:
                m = by_pos[pos]
                if not m.claimed or m.transient:
                    continue
                tag = len(self.owners)
                try:
                    full = batcher.add(tag, row)
                except RowError as exc:
                    m.refusals[index] = RowRefusal(index, exc.reason, exc.field)
                    continue
                self.owners.append((pos, index))
                m.queued.add(index)
                if full is not None:
                    batches.append(full)
            last = batcher.flush()
            if last is not None:
                batches.append(last)
            if not self._post_batches(schema, batches, by_pos):
                return

    def _post_batches(self, schema: str, batches: list[Batch], by_pos: dict[int, _Msg]) -> bool:
        """Post in order; False once posting must stop (transient failure or the deadline)."""
        from .delivery import PartialDeliveryError, post_with_bisection

        for n, batch in enumerate(batches):
            remaining = self.remaining_ms()
            if remaining is not None and remaining < self.deps.deadline_margin_ms:
                self._fail_tags(
                    [t for b in batches[n:] for t in b.lines], by_pos, "the invocation's deadline is near"
                )
                return False
            try:
                result = post_with_bisection(self.deps.client, schema, batch)
            except KeyRevokedError:
                raise
            except PartialDeliveryError as exc:
                self.posts += exc.result.posts
                self._apply(exc.result.posted, exc.result.refused, by_pos)
                pending = [t for b in exc.pending for t in b.lines] + [
                    t for b in batches[n + 1 :] for t in b.lines
                ]
                self._fail_tags(pending, by_pos, f"Monetate unavailable: {_describe(exc.cause)}")
                return False
            except Exception as exc:  # TransientApiError before any POST, or unexpected: retry
                self._fail_tags([t for b in batches[n:] for t in b.lines], by_pos, _describe(exc))
                return False
            self.posts += result.posts
            self._apply(result.posted, result.refused, by_pos)
        return True

    def _apply(self, posted: list[int], refused: list[tuple[int, str]], by_pos: dict[int, _Msg]) -> None:
        for tag in posted:
            pos, index = self.owners[tag]
            by_pos[pos].posted.add(index)
        for tag, reason in refused:
            pos, index = self.owners[tag]
            by_pos[pos].refusals[index] = RowRefusal(index, reason)

    def _fail_tags(self, tags: list[int], by_pos: dict[int, _Msg], reason: str) -> None:
        for tag in tags:
            m = by_pos[self.owners[tag][0]]
            m.transient = m.transient or reason
        logger.warning("posting stopped; the affected messages will be retried", extra={"reason": reason})

    # 6. settle
    def settle(self, msgs: list[_Msg]) -> BatchOutcome:
        outcome = BatchOutcome(posts=self.posts, revoked=self.revoked)
        counts: dict[str, int] = {}
        rows_posted: dict[str, int] = {}
        rows_rejected: dict[str, int] = {}
        for m in msgs:
            if m.twin is not None:
                continue
            result, failure = self._settle_one(m, rows_posted, rows_rejected)
            if failure is not None:
                outcome.failures[m.message_id] = failure
            else:
                outcome.results[m.message_id] = result
            counts[result] = counts.get(result, 0) + 1
        for m in msgs:  # identical messages share their first copy's fate (one dead letter at most)
            if m.twin is not None:
                first = msgs[m.twin]
                if first.message_id in outcome.failures:
                    outcome.failures[m.message_id] = outcome.failures[first.message_id]
                else:
                    outcome.results[m.message_id] = "duplicate"
                logger.info(
                    "message outcome",
                    extra={"message_id": m.message_id, "outcome": "twin", "twin_of": first.message_id},
                )
        _parallel(lambda op: op(), self._records, self.deps.idempotency_concurrency)
        self._emit_metrics(outcome, counts, rows_posted, rows_rejected)
        logger.info(
            "batch done",
            extra={
                "messages": len(msgs),
                "posts": self.posts,
                "outcomes": counts,
                "retried": len(outcome.failures),
            },
        )
        return outcome

    def _settle_one(
        self, m: _Msg, rows_posted: dict[str, int], rows_rejected: dict[str, int]
    ) -> tuple[str, str | None]:
        log: dict[str, Any] = {"message_id": m.message_id, "schema": m.schema}
        if self.revoked:
            if (
                m.claimed
                and m.posted
                and not m.refusals
                and len(m.posted) == len(m.envelope.rows if m.envelope else [])
            ):
                self._complete(m)  # a redelivery must not post these rows again
            else:
                self._release(m, "key revoked")
            logger.info("message outcome", extra={**log, "outcome": "retried", "reason": "key revoked"})
            return "retried", "Monetate API key revoked (403)"
        if m.skipped:
            logger.info(
                "message outcome", extra={**log, "outcome": "duplicate", "reason": "content posted before"}
            )
            return "duplicate", None
        rows_total = len(m.envelope.rows) if m.envelope else 0
        if m.transient is None and m.permanent is None and len(m.posted) + len(m.refusals) < rows_total:
            m.transient = "posting stopped before this message's rows were delivered"
        if m.transient is not None:
            self._release(m, m.transient)
            logger.info(
                "message outcome",
                extra={
                    **log,
                    "outcome": "retried",
                    "reason": m.transient,
                    "rows_posted_before_failure": len(m.posted),
                },
            )
            return "retried", m.transient
        assert m.permanent is not None or m.envelope is not None
        total = len(m.envelope.rows) if m.envelope else 0
        if m.permanent is None and not m.posted:
            # Every valid row was refused by Monetate (400): the whole message is permanent.
            m.permanent = (ROWS_REJECTED, describe_refusals(_sorted(m.refusals), total=total, posted=0))
        if m.permanent is not None:
            letter = DeadLetter(m.message_id, m.body, m.permanent[0], m.permanent[1])
        elif m.refusals:
            assert m.envelope is not None
            letter = refused_rows_letter(m.message_id, m.envelope, _sorted(m.refusals), posted=len(m.posted))
        else:
            self._complete(m)
            rows_posted[m.schema or ""] = rows_posted.get(m.schema or "", 0) + len(m.posted)
            logger.debug("message outcome", extra={**log, "outcome": "posted", "rows": len(m.posted)})
            return "posted", None
        if m.posted:
            rows_posted[m.schema or ""] = rows_posted.get(m.schema or "", 0) + len(m.posted)
        try:
            self.deps.dead_letters.send(letter)
        except Exception as exc:  # never lose it: SQS redelivers, maxReceiveCount ends in the DLQ
            self._release(m, "dead letter not sent")
            logger.error(
                "could not send to the DLQ; the message will be retried",
                extra={**log, "error_type": letter.error_type, "error": _describe(exc)},
            )
            return "retried", f"dead letter not sent: {_describe(exc)}"
        if m.posted:
            self._complete(m)  # its valid rows are stored; the refused ones are in the DLQ
        else:
            self._release(m, "dead-lettered")  # a redrive after a fix must be processed again
        if m.schema and m.refusals:
            rows_rejected[m.schema] = rows_rejected.get(m.schema, 0) + len(m.refusals)
        logger.info(
            "message outcome",
            extra={
                **log,
                "outcome": "dead_lettered" if not m.posted else "posted_partly",
                "error_type": letter.error_type,
                "rows_posted": len(m.posted),
                "rows_refused": len(m.refusals),
                "refused": [{"index": r.index, "field": r.field} for r in _sorted(m.refusals)][:50],
            },
        )
        return ("dead_lettered" if not m.posted else "posted_partly"), None

    def _complete(self, m: _Msg) -> None:
        """Record the content as done (deferred: all records are written in parallel at the end)."""
        if not m.claimed or m.identity is None:
            return
        identity, result = (
            m.identity,
            {
                "message_id": m.message_id,
                "rows_posted": len(m.posted),
                "rows_refused": len(m.refusals),
            },
        )

        def complete() -> None:
            try:
                self.deps.claims.complete(identity, result)
            except Exception as exc:  # the rows are stored; at worst a redelivery posts them again
                logger.warning(
                    "could not record the message as done",
                    extra={"message_id": m.message_id, "error": _describe(exc)},
                )

        self._records.append(complete)

    def _release(self, m: _Msg, why: str) -> None:
        """Delete our claim so a redelivery (or a redrive) is processed again (deferred too)."""
        if not m.claimed or m.identity is None:
            return
        identity = m.identity

        def release() -> None:
            try:
                self.deps.claims.release(identity, RuntimeError(why))
            except Exception as exc:  # the claim expires with the invocation's remaining time
                logger.warning(
                    "could not release the idempotency claim",
                    extra={"message_id": m.message_id, "error": _describe(exc)},
                )

        self._records.append(release)

    def _emit_metrics(
        self,
        outcome: BatchOutcome,
        counts: dict[str, int],
        rows_posted: dict[str, int],
        rows_rejected: dict[str, int],
    ) -> None:
        sink = self.deps.metrics
        posted = counts.get("posted", 0) + counts.get("posted_partly", 0)
        dead = counts.get("dead_lettered", 0) + counts.get("posted_partly", 0)
        for name, value in (
            ("MessagesPosted", posted),
            ("MessagesDeadLettered", dead),
            ("MessagesRetried", len(outcome.failures)),
            ("MessagesDuplicate", counts.get("duplicate", 0)),
        ):
            sink.count(name, value)
        for schema, n in rows_posted.items():
            sink.count("RowsPosted", n, schema=schema)
        for schema, n in rows_rejected.items():
            sink.count("RowsRejected", n, schema=schema)


def _live(msgs: list[_Msg]) -> list[_Msg]:
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


def _parallel(fn: Callable[[T], R], items: list[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads (in order; plain loop for one item)."""
    if len(items) <= 1 or workers <= 1:
        return [fn(x) for x in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


def _sorted(refusals: dict[int, RowRefusal]) -> list[RowRefusal]:
    return [refusals[i] for i in sorted(refusals)]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text[:300]}"


class MessageRetry(Exception):
    """Raised by the record handler for a message SQS must deliver again."""

    def __init__(self, message_id: str, reason: str) -> None:
        super().__init__(f"message {message_id} will be retried: {reason}")
