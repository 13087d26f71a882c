"""The pieces of IngestFile's failure handling: the outcome table, events, bounded output."""

from __future__ import annotations

import json
from typing import Any

import pytest
from monetate_ingest.delivery.envelope import parse_envelope
from monetate_ingest.formats.exceptions import UnknownColumnsError
from monetate_ingest.ingest.events import Continuation, read_event
from monetate_ingest.ingest.exceptions import EventError, ParkingError, StateStoreError
from monetate_ingest.ingest.failures import RULES, classify
from monetate_ingest.ingest.parking import park_rows
from monetate_ingest.ingest.report import MAX_ERRORS, MAX_MESSAGE_CHARS, Report
from monetate_ingest.ingest.s3_layout import MAX_KEY_BYTES, FileRef, Ignored, fit_key, route
from monetate_ingest.monetate.exceptions import InvalidSchemaNameError, PermanentApiError, TransientApiError


def _ref(name: str = "f.csv") -> FileRef:
    ref = route("bucket", f"incoming/visits/{name}", '"etag"', 10)
    assert isinstance(ref, FileRef)
    return ref


# -- the outcome table ---------------------------------------------------------------------------------


def test_an_unforeseen_exception_fails_the_file_and_raises() -> None:
    # Given an exception nobody foresaw
    failure = classify(ZeroDivisionError("division by zero"))
    # Then it is an internal error that raises (Lambda retries it), naming the type and the way out
    assert failure.code == "internal_error" and failure.rule.raises
    assert failure.message.startswith("ZeroDivisionError: division by zero.")
    assert "replay" in failure.message


def test_causes_in_the_file_return_and_causes_in_the_deployment_raise() -> None:
    # Given a refused schema name, unknown columns, a 413 and a failing table
    name = classify(InvalidSchemaNameError("schema name '.' is not valid"))
    columns = classify(UnknownColumnsError("visits", ["a", "b"]))
    refused = classify(PermanentApiError("413", status=413, url="https://x/api/data/v1/a/p/data/s/"))
    table = classify(StateStoreError("could not read", table="t"))
    # Then the file's own faults return; the others raise; each says where
    assert (name.code, name.rule.raises, name.rule.forget) == ("invalid_schema", False, False)
    assert (columns.code, columns.rule.raises, columns.where["columns"]) == (
        "unknown_columns",
        False,
        ["a", "b"],
    )
    assert (refused.code, refused.rule.raises) == ("monetate_refused", True)
    assert refused.where == {"call": "/api/data/v1/a/p/data/s/", "status": 413}
    assert (table.code, table.rule.raises, table.where) == ("state_unavailable", True, {"table": "t"})


def test_the_table_lists_subclasses_before_their_bases() -> None:
    classes = [cls for cls, _ in RULES]
    for i, cls in enumerate(classes):
        assert not any(issubclass(cls, base) for base in classes[:i]), cls
    assert classes[-1] is Exception


# -- events ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "says"),
    [
        (None, "null"),
        ([1], "a list"),
        ({"foo": 1}, "'foo'"),
        ({"Records": {}}, "not a list"),
        ({"Event": "s3:TestEvent"}, "s3:TestEvent"),
        ({"continuation": {"file": {"bucket": "b", "key": 1}}}, "'key'"),
    ],
)
def test_an_event_that_is_not_ours_is_an_event_error_saying_what_it_is(event: Any, says: str) -> None:
    with pytest.raises(EventError, match=says):
        read_event(event)


def test_a_malformed_record_is_ignored_naming_the_record_and_the_field() -> None:
    good = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}
    records = [
        "x",
        {"eventSource": "aws:sqs"},
        {
            **good,
            "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/v/f.csv", "size": -1, "eTag": "e"}},
        },
        {
            **good,
            "s3": {"bucket": {"name": "b"}, "object": {"key": "incoming/v/f+1.csv", "size": 3, "eTag": "e"}},
        },
    ]
    got = read_event({"Records": records})
    assert isinstance(got, list)
    assert [type(r) for r in got] == [Ignored, Ignored, Ignored, FileRef]
    assert isinstance(got[0], Ignored) and got[0].reason == "record 1 is a str, not an S3 record"
    assert isinstance(got[2], Ignored) and "s3.object.size is -1" in got[2].reason
    assert isinstance(got[3], FileRef) and got[3].key == "incoming/v/f 1.csv"


def test_a_continuation_is_read_back() -> None:
    ref = _ref()
    got = read_event({"continuation": {"file": ref.to_payload(), "invocation": 3}})
    assert got == Continuation(ref, 3)


# -- bounded output -----------------------------------------------------------------------------------------


def test_a_report_caps_its_errors_and_their_messages() -> None:
    report = Report(source={}, schema="s")
    for i in range(MAX_ERRORS + 5):
        report.fail("x", f"error {i} " + "y" * 10_000, columns=list(range(100)))
    data = report.to_dict()
    assert len(data["errors"]) == MAX_ERRORS and data["errors_omitted"] == 5
    first = data["errors"][0]
    assert len(first["message"]) <= MAX_MESSAGE_CHARS and "characters left out" in first["message"]
    assert (
        first["message"].startswith("error 0 ")
        and len(first["columns"]) == 50
        and first["columns_omitted"] == 50
    )


def test_a_long_key_is_shortened_with_a_hash_and_stays_distinct() -> None:
    a, b = "n" * 1_100 + "a", "n" * 1_100 + "b"
    ka, kb = fit_key("reports/", a, ".report.json"), fit_key("reports/", b, ".report.json")
    assert ka != kb and len(ka.encode()) <= MAX_KEY_BYTES and ka.endswith(".report.json")
    assert fit_key("reports/", "short", ".json") == "reports/short.json"
    wide = fit_key("r/", "ü" * 600, ".x")  # two bytes a character: never cut one in half
    assert len(wide.encode()) <= MAX_KEY_BYTES and wide.encode().decode() == wide


class _Sqs:
    def __init__(self, fail: bool = False) -> None:
        self.bodies: list[str] = []
        self.fail = fail

    def send_message(self, **kw: Any) -> dict[str, Any]:
        if self.fail:
            raise TimeoutError("read timed out")
        self.bodies.append(kw["MessageBody"])
        return {}


def test_parked_rows_are_split_into_messages_within_the_limit() -> None:
    sqs = _Sqs()
    rows = [{"id": str(i), "blob": "x" * 1_000} for i in range(50)]
    sent, too_large = park_rows(sqs, "q", _ref(), rows, list(range(2, 52)), limit=10_000)
    assert too_large == [] and sent == len(sqs.bodies) > 1
    assert all(len(b.encode()) <= 10_000 for b in sqs.bodies)
    parked = [r for b in sqs.bodies for r in parse_envelope(b).rows]
    assert [r["id"] for r in parked] == [str(i) for i in range(50)]
    lines = [ln for b in sqs.bodies for ln in json.loads(b)["source"]["lines"]]
    assert lines == list(range(2, 52))


def test_a_row_too_large_for_any_message_is_returned_not_sent() -> None:
    sqs = _Sqs()
    rows = [{"id": "small"}, {"id": "big", "blob": "x" * 20_000}]
    sent, too_large = park_rows(sqs, "q", _ref(), rows, [2, 3], limit=10_000)
    assert sent == 1 and [line for line, _ in too_large] == [3]


def test_a_failing_send_names_the_queue() -> None:
    with pytest.raises(ParkingError, match=r"records queue q .*TimeoutError: read timed out") as info:
        park_rows(_Sqs(fail=True), "q", _ref(), [{"id": "1"}], [2])
    assert info.value.where == {"queue": "q"}


def test_transient_monetate_errors_raise() -> None:
    assert classify(TransientApiError("502")).rule.raises
