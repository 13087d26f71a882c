"""Dead letters within SQS's 256 KiB: split envelopes, capped reasons, nothing ever cut from a body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from monetate_ingest.delivery.envelope import Envelope, parse_envelope
from monetate_ingest.records.dead_letters import (
    MAX_ERROR_MESSAGE_CHARS,
    MAX_SQS_MESSAGE_BYTES,
    DeadLetter,
    RowRefusal,
    attributes,
    fits,
    truncate,
)
from monetate_ingest.records.letters import LetterTooLargeError, refused_rows, whole

from tests.unit.records.fakes import World, env, purchase


def sqs_size(letter: DeadLetter) -> int:
    """What SQS counts: the body and every attribute's name, type and value."""
    attrs = attributes(letter)
    return len(letter.body.encode()) + sum(
        len(k) + len(v["DataType"]) + len(v["StringValue"].encode()) for k, v in attrs.items()
    )


def big_rows(n: int, size: int = 1_000) -> list[dict[str, Any]]:
    return [purchase(f"p{i}", customer="c" + "é" * (size // 2)) for i in range(n)]


def test_a_body_that_fits_is_kept_byte_for_byte() -> None:
    body = env(purchase("p1"))
    [letter] = whole("m", body, parse_envelope(body), "unknown_schema", "no such schema")
    assert letter.body == body and sqs_size(letter) <= MAX_SQS_MESSAGE_BYTES


def test_an_envelope_too_large_for_one_letter_is_split_into_parts_that_fit() -> None:
    # Given a 700 KB envelope (queues now take 1 MiB) with IngestFile's source lines
    rows = big_rows(700)
    source = {"bucket": "b", "key": "incoming/purchases/f.csv", "lines": list(range(2, 702))}
    body = env(*rows, source=source)
    assert len(body.encode()) > 600_000
    # When it is dead-lettered whole
    letters = whole("m", body, parse_envelope(body), "unknown_schema", "schema 'purchases' does not exist")
    # Then every part fits SQS's limit with its attributes, and together they hold every row in order
    assert len(letters) >= 3
    assert all(sqs_size(letter) <= MAX_SQS_MESSAGE_BYTES for letter in letters)
    parts = [parse_envelope(letter.body) for letter in letters]
    assert [r for p in parts for r in p.rows] == rows
    assert [ln for p in parts for ln in (p.source or {})["lines"]] == source["lines"]
    assert all(p.schema == "purchases" and (p.source or {})["bucket"] == "b" for p in parts)
    # And each reason says which part it is, and why
    assert letters[1].error_message.startswith(f"part 2 of {len(letters)}")
    assert all("does not exist" in letter.error_message for letter in letters)


def test_refused_rows_too_large_for_one_letter_are_split_each_with_its_own_reasons() -> None:
    rows = big_rows(600)
    envelope = Envelope("purchases", rows)
    refusals = [RowRefusal(i, f"bad row {i}", "price") for i in range(0, 600, 2)]
    letters = refused_rows("m", envelope, refusals, posted=300)
    assert len(letters) >= 2 and all(fits(letter) for letter in letters)
    assert [r for letter in letters for r in parse_envelope(letter.body).rows] == rows[::2]
    first_rows = len(parse_envelope(letters[0].body).rows)
    assert "rows[0] field 'price': bad row 0" in letters[0].error_message
    assert f"rows[{2 * first_rows}]" not in letters[0].error_message
    assert f"rows[{2 * first_rows}] field 'price'" in letters[1].error_message


def test_a_body_that_is_not_an_envelope_and_too_large_is_never_cut() -> None:
    with pytest.raises(LetterTooLargeError, match="not an envelope"):
        whole("m", "x" * 300_000, None, "invalid_json", "not JSON")


def test_a_single_row_larger_than_a_letter_is_never_cut() -> None:
    envelope = Envelope("purchases", [purchase("p1", customer="c" * 300_000)])
    with pytest.raises(LetterTooLargeError, match=r"rows\[0\] alone"):
        refused_rows("m", envelope, [RowRefusal(0, "too long")], posted=0)


def test_a_message_that_cannot_be_dead_lettered_is_left_to_sqs_not_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a 300 KB body that is not JSON (the records queue accepts up to 1 MiB)
    w = World()
    body = "not json " * 35_000
    # When processed with a valid message
    out = w.run(body, env(purchase("p1")))
    # Then it is retried (SQS moves it whole to the DLQ after maxReceiveCount), with the reason
    assert list(out.failures) == ["m0"] and out.results == {"m1": "posted"}
    assert "invalid_json" in out.failures["m0"] and "not dead-lettered" in out.failures["m0"]
    assert any(getattr(r, "message_id", None) == "m0" and r.levelname == "ERROR" for r in caplog.records)


def test_the_reason_is_cut_to_fit_beside_a_large_body_and_says_how_much_was_left_out() -> None:
    # Given a body close to the limit and a very long reason
    body = "x" * (MAX_SQS_MESSAGE_BYTES - 2_000)
    letter = DeadLetter("id", body, "rows_rejected", "reason " * 10_000)
    # When the attributes are computed
    message = attributes(letter)["error_message"]["StringValue"]
    # Then body + attributes fit, and the cut says how many characters it left out
    assert sqs_size(letter) <= MAX_SQS_MESSAGE_BYTES
    assert message.endswith("more characters left out)") and len(message) < 2_000


def test_a_reason_is_never_longer_than_the_cap() -> None:
    letter = DeadLetter("id", "{}", "x", "é" * 50_000)
    message = attributes(letter)["error_message"]["StringValue"]
    assert len(message) <= MAX_ERROR_MESSAGE_CHARS
    left_out = int(message.rsplit("(", 1)[1].split()[0])
    assert left_out + len(message.split(" … ")[0]) == 50_000


def test_truncate_keeps_short_text_whole() -> None:
    assert truncate("short", 100) == "short"


def test_every_letter_of_a_batch_fits_sqs_s_limit() -> None:
    # Given a batch of big messages: one all-invalid (dead-lettered whole), one partly invalid
    w = World()
    invalid = [purchase(f"p{i}", price="x" + "é" * 500) for i in range(600)]
    mixed = [purchase(f"q{i}", price=9 if i % 2 else "bad" + "é" * 500) for i in range(600)]
    out = w.run(env(*invalid), env(*mixed))
    # Then both end in the DLQ (the second partly) and every letter is within the limit
    assert out.results == {"m0": "dead_lettered", "m1": "posted_partly"}
    assert len(w.dlq.sent) > 2 and all(sqs_size(letter) <= MAX_SQS_MESSAGE_BYTES for letter in w.dlq.sent)
    dead = [r for letter in w.dlq.sent if letter.message_id == "m0" for r in json.loads(letter.body)["rows"]]
    assert dead == invalid
