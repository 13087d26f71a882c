"""Per-message outcomes are total: whatever goes wrong with one message decides that message only."""

from __future__ import annotations

from typing import Any

import pytest
from monetate_ingest.formats.exceptions import RowError
from monetate_ingest.monetate.exceptions import (
    AuthenticationError,
    NotFoundError,
    PermanentApiError,
    TransientApiError,
    UnknownSchemaError,
)
from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.records.types import RowCoercer, compile_row_coercer
from monetate_ingest.settings import RowSettings

from tests.unit.records.fakes import World, env, holds, purchase


def deep(levels: int) -> str:
    return '{"schema": "purchases", "rows": [{"purchase_id": ' + "[" * levels + "]" * levels + "}]}"


def test_a_message_nesting_arrays_100000_deep_is_dead_lettered_and_its_bystanders_posted() -> None:
    # Given a batch with a message nesting arrays ~100,000 deep between two valid ones
    w = World()
    bomb = deep(100_000)
    # When processed
    out = w.run(env(purchase("p1")), bomb, env(purchase("p2")))
    # Then the deep one is dead-lettered as invalid JSON, saying why, and the others are posted
    assert out.failures == {}
    assert out.results == {"m0": "posted", "m1": "dead_lettered", "m2": "posted"}
    letter = w.dlq.by_id("m1")
    assert letter.error_type == "invalid_json" and "too deeply" in letter.error_message
    assert letter.body == bomb
    assert w.monetate.stored_ids() == ["p1", "p2"]


def test_an_invalid_schema_name_is_refused_before_any_call() -> None:
    # Given a message whose schema is "." (a dot segment would turn the URL into another endpoint)
    w = World()
    # When processed
    out = w.run('{"schema": ".", "rows": [{"customer_id": "c"}]}', env(purchase("p1")))
    # Then it is dead-lettered as invalid_schema with the rule, and no call carried the name
    assert out.results == {"m0": "dead_lettered", "m1": "posted"}
    letter = w.dlq.by_id("m0")
    assert letter.error_type == "invalid_schema" and "a letter first" in letter.error_message
    assert "." not in w.schemas.lookups and [s for s, _ in w.monetate.posts] == ["purchases"]


class ExplodingCoercer:
    """A coercer with a bug: rows whose purchase_id is "boom" raise an unexpected exception."""

    def __init__(self, inner: RowCoercer) -> None:
        self.inner = inner

    def coerce(self, raw: dict[str, Any], /) -> dict[str, Any]:
        if raw.get("purchase_id") == "boom":
            raise ZeroDivisionError("division by zero")
        return self.inner.coerce(raw)


def test_an_unexpected_exception_coercing_one_message_retries_that_message_only(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a coercer that fails unexpectedly on one message's row
    w = World()

    def coercer(spec: SchemaSpec, rows: RowSettings) -> RowCoercer:
        return ExplodingCoercer(compile_row_coercer(spec, rows))

    w.deps.coercer = coercer
    # When that message is processed between two valid ones
    out = w.run(env(purchase("p1")), env(purchase("p2"), purchase("boom")), env(purchase("p3")))
    # Then it alone is retried, with a reason naming the exception type; the others are posted
    assert out.results == {"m0": "posted", "m2": "posted"}
    assert list(out.failures) == ["m1"] and "ZeroDivisionError" in out.failures["m1"]
    assert w.monetate.stored_ids() == ["p1", "p3"] and w.dlq.sent == []
    # And the log names the message and the exception type (the reason is findable by message id)
    bug = next(r for r in caplog.records if getattr(r, "message_id", None) == "m1" and r.levelname == "ERROR")
    assert getattr(bug, "error_type", None) == "ZeroDivisionError"
    retried = next(r for r in caplog.records if r.getMessage() == "message will be retried")
    assert getattr(retried, "message_id", None) == "m1" and "ZeroDivisionError" in str(retried.reason)


def test_a_row_error_in_coercion_is_a_refusal_not_a_bug() -> None:
    # Given a coercer raising the formats room's RowError for one row
    w = World()

    class Refusing:
        def coerce(self, raw: dict[str, Any], /) -> dict[str, Any]:
            if raw.get("purchase_id") == "x":
                raise RowError("field 'purchase_id' is reserved", field="purchase_id")
            return dict(raw)

    w.deps.coercer = lambda spec, rows: Refusing()
    # When processed
    out = w.run(env(purchase("ok"), purchase("x")))
    # Then that row is dead-lettered with its field, the other posted
    assert out.results == {"m0": "posted_partly"}
    assert "rows[1] field 'purchase_id'" in w.dlq.by_id("m0").error_message


@pytest.mark.parametrize("status", [413, 405, 409, 415, 422])
def test_an_unexpected_4xx_for_one_schema_dead_letters_its_messages_and_posts_the_other_schema(
    status: int,
) -> None:
    # Given Monetate refusing every POST to "visits" with an unexpected 4xx
    w = World()
    w.monetate.fail_when(
        lambda schema, rows: schema == "visits",
        PermanentApiError(f"POST /data/visits/: Monetate answered HTTP {status}", status=status),
    )
    bodies = [
        env({"customer_id": "v1"}, schema="visits"),
        env(purchase("p1")),
        env({"customer_id": "v2"}, schema="visits"),
    ]
    # When processed
    out = w.run(*bodies)
    # Then the visits messages are dead-lettered with Monetate's answer, and purchases is posted
    assert out.failures == {}
    assert out.results == {"m0": "dead_lettered", "m1": "posted", "m2": "dead_lettered"}
    for mid in ("m0", "m2"):
        letter = w.dlq.by_id(mid)
        assert letter.error_type == "post_refused" and str(status) in letter.error_message
    assert w.monetate.stored_ids() == ["p1"]


def test_a_413_for_the_merged_body_posts_each_message_on_its_own() -> None:
    # Given Monetate refusing bodies of more than two rows as too large (413)
    w = World()
    w.monetate.fail_when(lambda schema, rows: len(rows) > 2, PermanentApiError("HTTP 413", status=413))
    # When four one-row messages are merged into one POST
    out = w.run(*(env(purchase(f"p{i}")) for i in range(4)))
    # Then the 413 is not blamed on any of them: they are posted in smaller POSTs
    assert out.failures == {} and set(out.results.values()) == {"posted"}
    assert sorted(w.monetate.stored_ids()) == ["p0", "p1", "p2", "p3"]


def test_a_404_after_the_schema_was_removed_rereads_it_once_and_dead_letters_its_messages() -> None:
    # Given "visits" removed from Monetate after its schema was cached (POSTs answer 404)
    w = World()
    w.monetate.fail_when(
        lambda schema, rows: schema == "visits", NotFoundError("not found (404)", status=404)
    )
    bodies = [env({"customer_id": "v1"}, schema="visits"), env({"customer_id": "v2"}, schema="visits")]

    def removed(name: str) -> SchemaSpec:
        w.schemas.refreshed.append(name)
        raise UnknownSchemaError(f"schema {name!r} does not exist in Monetate", status=404)

    w.schemas.refresh = removed  # type: ignore[method-assign]
    # When processed with a purchases message
    out = w.run(*bodies, env(purchase("p1")))
    # Then the schema is re-read once, its messages dead-lettered as unknown_schema, purchases posted
    assert w.schemas.refreshed == ["visits"]
    assert out.failures == {}
    assert out.results == {"m0": "dead_lettered", "m1": "dead_lettered", "m2": "posted"}
    assert w.dlq.types() == {"m0": "unknown_schema", "m1": "unknown_schema"}
    assert "removed" in w.dlq.by_id("m0").error_message


def test_a_404_while_the_schema_still_exists_posts_the_rows_again_once() -> None:
    # Given one 404 on the first POST (a Monetate hiccup) and the schema still there
    w = World()
    w.monetate.fail_on[1] = NotFoundError("not found (404)", status=404)
    # When processed
    out = w.run(env(purchase("p1")), env(purchase("p2")))
    # Then the schema is re-read, the rows posted once more and stored
    assert w.schemas.refreshed == ["purchases"]
    assert out.results == {"m0": "posted", "m1": "posted"} and len(w.monetate.posts) == 2


def test_two_schemas_one_failing_retries_only_its_messages() -> None:
    # Given every POST to "visits" failing (5xx after the client's retries)
    w = World()
    w.monetate.fail_when(lambda schema, rows: schema == "visits", TransientApiError("HTTP 503", status=503))
    bodies = [env({"customer_id": "v1"}, schema="visits"), env(purchase("p1")), env(purchase("p2"))]
    # When processed (visits first)
    out = w.run(*bodies)
    # Then purchases is posted and the visits message alone is retried
    assert out.results == {"m1": "posted", "m2": "posted"}
    assert list(out.failures) == ["m0"] and "503" in out.failures["m0"]
    assert w.dlq.sent == []


def test_a_401_that_a_fresh_token_did_not_cure_stops_posting_and_retries_every_message() -> None:
    # Given Monetate refusing the function's token (not any payload)
    w = World()
    w.monetate.fail_from = (1, AuthenticationError("401 after a fresh token", status=401))
    # When two schemas' messages are processed
    out = w.run(env(purchase("p1")), env({"customer_id": "v1"}, schema="visits"))
    # Then nothing is dead-lettered (it is not the messages' fault) and no second POST is made
    assert sorted(out.failures) == ["m0", "m1"] and w.dlq.sent == []
    assert len(w.monetate.posts) == 1


def test_an_unexpected_exception_from_the_client_retries_that_payloads_messages_only() -> None:
    # Given a client bug on the visits payload
    w = World()
    w.monetate.fail_when(holds("v-bug"), KeyError("schema_rows"))
    # When processed with purchases
    out = w.run(env({"customer_id": "v-bug"}, schema="visits"), env(purchase("p1")))
    # Then the visits message is retried with the exception type; purchases is posted
    assert out.results == {"m1": "posted"} and "KeyError" in out.failures["m0"]


def test_a_message_failing_on_its_last_receive_is_dead_lettered_with_the_last_reason() -> None:
    # Given Monetate down, and messages on their 5th receive of a queue with maxReceiveCount 5
    w = World()
    w.monetate.fail_from = (1, TransientApiError("HTTP 503 (after 5 attempts)", status=503))
    body = env(purchase("p1"))
    # When processed
    out = w.run(body, receive_count=5, receive_limit=5)
    # Then PostRecords dead-letters it itself, byte for byte, with why it never got through
    assert out.failures == {} and out.results == {"m0": "dead_lettered"}
    letter = w.dlq.by_id("m0")
    assert letter.body == body and letter.error_type == "retries_exhausted"
    assert "after 5 receives" in letter.error_message and "503" in letter.error_message
    assert w.claims.records == {}  # a redrive after the outage posts it


def test_before_its_last_receive_a_failing_message_is_retried() -> None:
    w = World()
    w.monetate.fail_from = (1, TransientApiError("HTTP 503", status=503))
    out = w.run(env(purchase("p1")), receive_count=4, receive_limit=5)
    assert list(out.failures) == ["m0"] and w.dlq.sent == []


def test_on_its_last_receive_a_message_of_a_revoked_key_is_not_dead_lettered() -> None:
    # Given a revoked key (the contract: nothing dead-lettered, every message failed)
    from monetate_ingest.monetate.exceptions import KeyRevokedError

    w = World()
    w.monetate.fail_from = (1, KeyRevokedError("403", status=403))
    out = w.run(env(purchase("p1")), receive_count=5, receive_limit=5)
    assert list(out.failures) == ["m0"] and w.dlq.sent == []


def test_when_the_dlq_refuses_the_last_receive_letter_the_message_is_left_to_sqs() -> None:
    w = World()
    w.monetate.fail_from = (1, TransientApiError("HTTP 503", status=503))
    w.dlq.fail = True
    out = w.run(env(purchase("p1")), receive_count=5, receive_limit=5)
    assert list(out.failures) == ["m0"] and "dead letter" in out.failures["m0"]
