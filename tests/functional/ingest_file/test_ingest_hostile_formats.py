"""Hostile files end to end through IngestFile: the bad row is rejected with its line and reason,
the rest is posted, and the report's counts add up (read = posted + rejected + parked). Where a
file cannot be read on, it fails naming the line, after posting the rows before it — never a
``complete`` report over rows that were not read."""

from __future__ import annotations

import json
from typing import Any

from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import HEADER, Harness, customers_objects, ids

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean

DEEP = "[" * 10_000 + "]" * 10_000
#: Values no row may carry, as JSON text, and what the reject's reason says.
HOSTILE_JSON = [
    ('{"customer_id": "{id}", "tags": ' + DEEP + "}", "nests arrays or objects too deeply"),
    ('{"customer_id": "{id}", "points": ' + "7" * 5000 + "}", "whole number of more than 4300 digits"),
    ('{"customer_id": "{id}", "email": NaN}', "NaN is not a JSON number"),
    ('{"customer_id": "{id}", "points": Infinity}', "Infinity is not a JSON number"),
    ('{"customer_id": "{id}", "points": -Infinity}', "-Infinity is not a JSON number"),
    ('{"customer_id": "{id}", "email": 1e400}', "field 'email' is out of range: it reads as inf"),
    ('{"customer_id": "{id}", "points": ' + "9" * 4000 + "}", "field 'points' is out of range"),
    ('{"customer_id": "{id}", "points": 9007199254740993}', "field 'points' is out of range"),
]


def _good(i: int, prefix: str) -> str:
    return json.dumps(customers_objects(i + 1, prefix=prefix)[i])


def _reasons(clean: Harness, key: str) -> dict[int, str]:
    return {r["line"]: r["reason"] for r in clean.rejects(key)}


def _assert_clean_values(rows: list[dict[str, Any]]) -> None:
    """No stored value is infinite, NaN or their text."""
    for row in rows:
        for value in row.values():
            assert str(value).lower() not in ("inf", "-inf", "nan", "infinity"), row


def test_json_lines_with_hostile_values_reject_those_lines_and_post_the_rest(clean: Harness) -> None:
    # Given JSON lines alternating good rows and each hostile value (deep, huge, NaN, Infinity …),
    # and one line with a byte that is not UTF-8
    prefix = "hj-"
    lines: list[str] = []
    for i, (bad, _) in enumerate(HOSTILE_JSON):
        lines += [_good(i, prefix), bad.replace("{id}", f"{prefix}bad{i}")]
    body = ("\n".join(lines) + "\n").encode() + b'{"customer_id": "hj-latin1", "email": "caf\xe9"}\n'
    key = "incoming/customers/hostile/values.jsonl"
    # When the file is ingested
    clean.drop(key, body)
    # Then the report is complete and adds up, every hostile line a reject, every good row stored
    report = clean.report(key)
    n = len(HOSTILE_JSON)
    assert report["status"] == "complete", report
    assert report["counts"] == {
        "read": 2 * n + 1,
        "posted": n,
        "rejected": n + 1,
        "parked": 0,
        "unchanged": 0,
    }
    reasons = _reasons(clean, key)
    assert sorted(reasons) == [2 * (i + 1) for i in range(n)] + [2 * n + 1]
    for i, (_, says) in enumerate(HOSTILE_JSON):
        assert says in reasons[2 * (i + 1)], (i, reasons[2 * (i + 1)])
    assert reasons[2 * n + 1] == "line is not valid UTF-8 (bytes 0xe9)"
    stored = clean.stored("customers", prefix)
    assert sorted(ids(stored)) == sorted(f"{prefix}{i}" for i in range(n))
    _assert_clean_values(stored)


def test_a_json_array_with_hostile_elements_rejects_those_elements_and_posts_the_rest(clean: Harness) -> None:
    # Given an array alternating good objects and each hostile value
    prefix = "ha-"
    elements: list[str] = []
    for i, (bad, _) in enumerate(HOSTILE_JSON):
        elements += [_good(i, prefix), bad.replace("{id}", f"{prefix}bad{i}")]
    key = "incoming/customers/hostile/values.json"
    # When the file is ingested
    clean.drop(key, "[\n" + ",\n".join(elements) + "\n]\n")
    # Then each hostile element is a reject at its index, and the good ones are stored
    report = clean.report(key)
    n = len(HOSTILE_JSON)
    assert report["status"] == "complete", report
    assert report["counts"] == {"read": 2 * n, "posted": n, "rejected": n, "parked": 0, "unchanged": 0}
    reasons = _reasons(clean, key)
    assert sorted(reasons) == [2 * (i + 1) for i in range(n)]
    for i, (_, says) in enumerate(HOSTILE_JSON):
        assert says in reasons[2 * (i + 1)]
    stored = clean.stored("customers", prefix)
    assert sorted(ids(stored)) == sorted(f"{prefix}{i}" for i in range(n))
    _assert_clean_values(stored)


def test_a_json_array_element_that_hides_its_end_fails_the_file_after_posting_the_ones_before(
    clean: Harness,
) -> None:
    # Given 1,200 good elements, then one with NaN and mismatched brackets, then more
    prefix = "hb-"
    objects = customers_objects(1300, prefix=prefix)
    good = [json.dumps(o) for o in objects]
    body = (
        "["
        + ",".join(good[:1200])
        + ', {"customer_id": "hb-x", "points": NaN]}, '
        + ",".join(good[1200:])
        + "]"
    )
    key = "incoming/customers/hostile/broken.json"
    # When the file is ingested
    clean.drop(key, body)
    # Then it fails naming element 1201, with the 1,200 elements before it posted and counted
    report = clean.report(key)
    assert report["status"] == "failed"
    assert report["counts"] == {"read": 1200, "posted": 1200, "rejected": 0, "parked": 0, "unchanged": 0}
    (error,) = report["errors"]
    assert error["line"] == 1201
    assert error["message"].startswith("JSON array element 1201 is not valid JSON: NaN is not a JSON number")
    assert sorted(ids(clean.stored("customers", prefix))) == sorted(o["customer_id"] for o in objects[:1200])


def test_a_csv_quote_that_never_closes_fails_the_file_naming_its_line(clean: Harness) -> None:
    # Given 49 rows whose first (line 2) opens a quote that never closes
    rows = ['hq1,"open,1,true,,'] + [f"hq{i},u{i}@x.com,{i},true,," for i in range(2, 50)]
    key = "incoming/customers/hostile/open-quote.csv"
    # When the file is ingested
    clean.drop(key, HEADER + "\n" + "\n".join(rows) + "\n")
    # Then it is not 'complete' with 48 rows gone: it fails at line 2 saying which lines the quote took
    report = clean.report(key)
    assert report["status"] == "failed"
    assert report["counts"] == {"read": 0, "posted": 0, "rejected": 0, "parked": 0, "unchanged": 0}
    (error,) = report["errors"]
    assert error["line"] == 2
    assert error["message"].startswith("line 2: unterminated quote — a quoted field in column 2 ('email')")
    assert "lines 2-50 were read as one field" in error["message"]
    assert clean.stored("customers", "hq") == [] and clean.data_posts("customers") == []


def test_a_5_mb_csv_field_rejects_its_row_and_the_rest_is_posted(clean: Harness) -> None:
    # Given a 5 MB quoted note over 5,000 lines on line 3, a bad number after it, good rows around
    big = ("lorem, ipsum\n" * 5000) + "x" * (5 * 1024 * 1024)
    lines = [
        HEADER,  # 1
        "hf1,a@x.com,1,true,,",  # 2
        f'hf2,"{big}",2,true,,',  # 3 … 5003
        "hf3,c@x.com,lots,true,,",  # 5004: bad number
        'hf4,d@x.com,4,no,2024-05-01,"a,b"',  # 5005
    ]
    key = "incoming/customers/hostile/big-field.csv"
    # When the file is ingested (the default MAX_FIELD_BYTES, 1 MiB)
    clean.drop(key, "\n".join(lines) + "\n")
    # Then the big row is rejected at its line naming the limit, and the rows after it keep their lines
    report = clean.report(key)
    assert report["status"] == "complete", report
    assert report["counts"] == {"read": 4, "posted": 2, "rejected": 2, "parked": 0, "unchanged": 0}
    reasons = _reasons(clean, key)
    assert reasons == {
        3: "field 2 ('email') is longer than the limit of 1,048,576 bytes (MAX_FIELD_BYTES); "
        "the row (lines 3-5003) was skipped",
        5004: "field 'points' is not a number: 'lots'",
    }
    (big_reject,) = [r for r in clean.rejects(key) if r["line"] == 3]
    assert len(big_reject["raw"]) < 1000
    assert sorted(ids(clean.stored("customers", "hf"))) == ["hf1", "hf4"]


def test_csv_numbers_no_double_holds_are_rejected_before_posting(clean: Harness) -> None:
    # Given NUMBER cells that are NaN, infinite or whole numbers beyond 2**53 (one of 4,000 digits)
    bad = ["NaN", "inf", "-Infinity", "1e400", "9" * 4000, "9007199254740993"]
    lines = [HEADER, "hn0,a@x.com,1,true,,"] + [f"hn{i + 1},e@x.com,{v},true,," for i, v in enumerate(bad)]
    key = "incoming/customers/hostile/numbers.csv"
    # When the file is ingested
    clean.drop(key, "\n".join(lines) + "\n")
    # Then each is rejected at its line naming the field, and Monetate was never asked to refuse one
    report = clean.report(key)
    assert report["status"] == "complete"
    assert report["counts"] == {"read": 7, "posted": 1, "rejected": 6, "parked": 0, "unchanged": 0}
    reasons = _reasons(clean, key)
    assert sorted(reasons) == list(range(3, 9))
    assert all(reason.startswith("field 'points' is ") for reason in reasons.values())
    assert "out of range" in reasons[7] and len(reasons[7]) < 300
    assert report["batches"]["posts"] == 1  # one POST, no bisection: nothing was refused upstream
    assert ids(clean.stored("customers", "hn")) == ["hn0"]
