"""Every reject reason, with its 1-based source line; Monetate's own refusals found by bisection."""

from __future__ import annotations

import json

from tests.functional.ingest_file import harness as conftest_ingest
from tests.functional.ingest_file.harness import (
    HEADER,
    Harness,
    ids,
)

# the module's stack and its per-test reset (fixtures shared through conftest_ingest)
harness = conftest_ingest.harness
clean = conftest_ingest.clean


def _by_line(rejects: list[dict]) -> dict[int, dict]:
    return {r["line"]: r for r in rejects}


def test_csv_reject_reasons_and_line_numbers(clean: Harness) -> None:
    # Given a CSV whose rows break one rule each; a quoted field spans lines 4-5, shifting the rest
    lines = [
        HEADER,  # 1
        "r1,a@x.com,1,true,2024-05-01,a",  # 2 ok
        "r2,b@x.com,1,true",  # 3 ragged
        'r3,"two',  # 4 ok, multi-line email …
        'lines@x.com",2,yes,2024-05-01,"a,b"',  # 5 … ends here
        "r4,d@x.com,12abc,true,2024-05-01,a",  # 6 bad number
        "r5,e@x.com,1,maybe,2024-05-01,a",  # 7 bad boolean
        "r6,f@x.com,1,true,not-a-date,a",  # 8 bad datetime
        ",g@x.com,1,true,2024-05-01,a",  # 9 missing identifier
        "r8,h@x.com,1,true,2024-05-01,a",  # 10 ok
        'r9,"never closed,1,true,2024-05-01,a',  # 11 unterminated quote (to EOF)
    ]
    key = "incoming/customers/rejects/all-reasons.csv"
    # When the file is ingested
    clean.drop(key, "\n".join(lines) + "\n")
    # Then the good rows are stored and each bad one is a reject at the line where it starts
    report = clean.report(key)
    assert report["status"] == "complete"
    assert report["counts"] == {"read": 9, "posted": 3, "rejected": 6, "parked": 0, "unchanged": 0}
    assert sorted(ids(clean.stored("customers", "r"))) == ["r1", "r3", "r8"]
    rejects = _by_line(clean.rejects(key))
    assert sorted(rejects) == [3, 6, 7, 8, 9, 11]
    assert "4 fields" in rejects[3]["reason"] and "header has 6" in rejects[3]["reason"]
    assert rejects[3]["raw"] == ["r2", "b@x.com", "1", "true"]
    for line, field in ((6, "points"), (7, "vip"), (8, "signup"), (9, "customer_id")):
        assert rejects[line]["field"] == field
        assert f"'{field}'" in rejects[line]["reason"], rejects[line]
    assert "12abc" in rejects[6]["reason"]
    assert rejects[6]["raw"]["points"] == "12abc"
    assert "unterminated" in rejects[11]["reason"] or "never closed" in rejects[11]["reason"]
    assert report["rejects_key"] == "rejects/customers/rejects/all-reasons.csv.rejects.jsonl"


def test_jsonl_reject_reasons_and_line_numbers(clean: Harness) -> None:
    # Given JSON lines: a good object, a non-object, invalid JSON, a blank line, a bad field value
    lines = [
        json.dumps({"customer_id": "jl1", "points": 1}),  # 1 ok
        json.dumps(["jl2", 2]),  # 2 not an object
        '{"customer_id": "jl3", "points": ',  # 3 invalid JSON
        "",  # 4 blank: skipped, still counted as a line
        json.dumps({"customer_id": "jl5", "vip": "perhaps"}),  # 5 bad boolean
        json.dumps({"email": "no-id@x.com"}),  # 6 missing identifier
        json.dumps({"customer_id": "jl7", "signup": 1714557600}),  # 7 epoch number as a date
    ]
    key = "incoming/customers/rejects/reasons.jsonl"
    # When it is ingested
    clean.drop(key, "\n".join(lines) + "\n")
    # Then rejects carry the physical line numbers and a reason naming the field
    report = clean.report(key)
    assert report["counts"] == {"read": 6, "posted": 1, "rejected": 5, "parked": 0, "unchanged": 0}
    rejects = _by_line(clean.rejects(key))
    assert sorted(rejects) == [2, 3, 5, 6, 7]
    assert "object" in rejects[2]["reason"].lower()
    assert "json" in rejects[3]["reason"].lower()
    assert rejects[3]["raw"] == lines[2].strip()
    assert rejects[5]["field"] == "vip" and "'vip'" in rejects[5]["reason"]
    assert rejects[6]["field"] == "customer_id"
    assert rejects[7]["field"] == "signup" and "'signup'" in rejects[7]["reason"]
    assert ids(clean.stored("customers", "jl")) == ["jl1"]


def test_json_array_rejects_use_the_element_index(clean: Harness) -> None:
    # Given a JSON array whose 2nd element is not an object and 3rd has a bad number
    body = json.dumps(
        [
            {"customer_id": "ja1", "points": "7"},
            "not an object",
            {"customer_id": "ja3", "points": "1,000"},
            {"customer_id": "ja4"},
        ],
        indent=2,
    )
    key = "incoming/customers/rejects/array.json"
    # When it is ingested
    clean.drop(key, body)
    # Then the rejects' "line" is the element's 1-based index
    rejects = _by_line(clean.rejects(key))
    assert sorted(rejects) == [2, 3]
    assert rejects[3]["field"] == "points" and "thousands" in rejects[3]["reason"]
    assert sorted(ids(clean.stored("customers", "ja"))) == ["ja1", "ja4"]


def test_rows_monetate_refuses_are_found_by_bisection(clean: Harness) -> None:
    # Given UNKNOWN_COLUMNS=add and a JSON-lines file whose key "late_field" first appears after the
    # 1,000 rows IngestFile looks at before posting. Our coercion (policy add) passes the key on as a
    # STRING, but the schema was not PATCHed for it, so Monetate refuses that row with 400 — a real
    # case of our side being more lenient than Monetate's validation.
    objs = [{"customer_id": f"bi{i}", "points": i} for i in range(1_100)]
    objs[1_049]["late_field"] = "surprise"
    key = "incoming/customers/rejects/late-key.jsonl"
    # When it is ingested
    clean.drop(key, "".join(json.dumps(o) + "\n" for o in objs), UNKNOWN_COLUMNS="add")
    # Then the one refused row is a reject with Monetate's reason; every other row is stored
    report = clean.report(key)
    assert report["counts"] == {"read": 1_100, "posted": 1_099, "rejected": 1, "parked": 0, "unchanged": 0}
    (reject,) = clean.rejects(key)
    assert reject["line"] == 1_050
    assert reject["reason"].startswith("Monetate refused the row")
    assert "late_field" in reject["reason"]
    assert reject["raw"]["customer_id"] == "bi1049"
    stored = clean.stored("customers", "bi")
    assert len(stored) == 1_099 and "bi1049" not in ids(stored)
    # and the bisection cost only O(log n) extra POSTs for the refused 500-row batch
    assert report["batches"]["posts"] <= 3 + 2 * 10
    assert report["reject_reasons"].get("monetate_refused") == 1
