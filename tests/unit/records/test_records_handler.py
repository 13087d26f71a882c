"""PostRecords' Lambda handler: Powertools' partial batch response, lazy wiring, settings named."""

from __future__ import annotations

from typing import Any

import pytest
from monetate_ingest.monetate.exceptions import TransientApiError
from monetate_ingest.records.handler import make_handler

from tests.unit.records.fakes import World, env, purchase

# --- the handler (Powertools BatchProcessor) ---------------------------------------------------------


def sqs_event(bodies: dict[str, str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": mid,
                "receiptHandle": f"rh-{mid}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:records",
                "awsRegion": "us-east-1",
            }
            for mid, body in bodies.items()
        ]
    }


@pytest.mark.filterwarnings("ignore:No application metrics")  # the fake sink records them
def test_handler_reports_partial_batch_failures_in_powertools_shape() -> None:
    # Given a handler on fakes and Monetate down
    w = World()
    w.monetate.fail_from = (1, TransientApiError("down"))
    handler = make_handler(w.deps)
    # When a batch with a poison message and a good one is handled
    response = handler(sqs_event({"a": "nope", "b": env(purchase("p1"))}), None)
    # Then only the good-but-undeliverable one is retried; the poison one is dead-lettered
    assert response == {"batchItemFailures": [{"itemIdentifier": "b"}]}


@pytest.mark.filterwarnings("ignore:No application metrics")  # the fake sink records them
def test_handler_does_not_raise_when_the_entire_batch_fails() -> None:
    w = World()
    w.monetate.fail_from = (1, TransientApiError("down"))
    handler = make_handler(lambda: w.deps)
    response = handler(sqs_event({"a": env(purchase("p1")), "b": env(purchase("p2"))}), None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_importing_the_handler_needs_no_configuration_and_a_missing_variable_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an environment without the function's settings
    for var in ("MONETATE_RETAILER", "MONETATE_SECRET_ID", "RECORDS_DLQ_URL", "IDEMPOTENCY_TABLE"):
        monkeypatch.delenv(var, raising=False)
    # When the handler module is imported, then nothing fails (no network, no settings read)
    from functions.post_records import app

    # And the first invocation names what is missing
    monkeypatch.setenv("MONETATE_RETAILER", "acme")
    monkeypatch.setenv("MONETATE_SECRET_ID", "s")
    from monetate_ingest.errors import SettingsError

    with pytest.raises(SettingsError, match="RECORDS_DLQ_URL"):
        make_handler()(sqs_event({"a": "x"}), None)
    assert callable(app.lambda_handler)
