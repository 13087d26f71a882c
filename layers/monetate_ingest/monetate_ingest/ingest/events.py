"""What an invocation's event asks for: S3 ObjectCreated records, or a continuation of a file.

:func:`read_event` never fails with a raw ``KeyError`` or ``TypeError``: an event that is neither
an S3 notification nor a continuation raises :class:`EventError` saying what it is; a record of a
notification that is malformed, not from S3, or not an ObjectCreated event becomes an
:class:`Ignored` naming the record and the problem. Object keys are URL-decoded (``+`` is a space).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from monetate_ingest.ingest.exceptions import EventError
from monetate_ingest.ingest.s3_layout import FileRef, Ignored, route

_PAYLOAD_FIELDS = {"bucket": str, "key": str, "etag": str, "size": int, "schema": str, "name": str}


@dataclass(frozen=True)
class Continuation:
    """This function's own request to go on with a file (see ``continuation.py``)."""

    ref: FileRef
    invocation: int


def read_event(event: object) -> Continuation | list[FileRef | Ignored]:
    """The files an event names (see the module docstring)."""
    if not isinstance(event, Mapping):
        raise EventError(f"the event is {_kind(event)}, not an S3 notification (an object with 'Records')")
    if "continuation" in event:
        return _continuation(event["continuation"])
    records = event.get("Records")
    if records is None:
        raise EventError(_not_s3(event))
    if not isinstance(records, list):
        raise EventError(f"the event's 'Records' is {_kind(records)}, not a list of S3 records")
    return [_record(i, r) for i, r in enumerate(records, start=1)]


def _continuation(payload: object) -> Continuation:
    file = payload.get("file") if isinstance(payload, Mapping) else None
    if not isinstance(file, Mapping):
        raise EventError("the continuation has no 'file' object")
    for name, kind in _PAYLOAD_FIELDS.items():
        if not isinstance(file.get(name), kind) or isinstance(file.get(name), bool):
            raise EventError(f"the continuation's file has no valid {name!r} ({kind.__name__} expected)")
    invocation = payload.get("invocation", 0) if isinstance(payload, Mapping) else 0
    return Continuation(FileRef.from_payload(file), invocation if isinstance(invocation, int) else 0)


def _record(index: int, record: object) -> FileRef | Ignored:
    where = f"record {index}"
    if not isinstance(record, Mapping):
        return Ignored("", "", f"{where} is {_kind(record)}, not an S3 record")
    s3 = _mapping(record, "s3")
    bucket_info = _mapping(s3, "bucket")
    obj = _mapping(s3, "object")
    bucket = bucket_info.get("name")
    raw_key = obj.get("key")
    bucket_s = bucket if isinstance(bucket, str) else ""
    key = unquote_plus(raw_key) if isinstance(raw_key, str) else ""
    source = record.get("eventSource")
    if source != "aws:s3":
        return Ignored(bucket_s, key, f"{where} comes from {source!r}, not 'aws:s3'")
    name = record.get("eventName")
    if not isinstance(name, str) or not name.startswith("ObjectCreated"):
        return Ignored(bucket_s, key, f"{where} is event {name!r}, not ObjectCreated")
    problem = _missing(bucket, raw_key, obj)
    if problem:
        return Ignored(bucket_s, key, f"{where}: {problem}")
    return route(bucket_s, key, str(obj["eTag"]), int(obj["size"]))


def _mapping(parent: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = parent.get(name)
    return value if isinstance(value, Mapping) else {}


def _missing(bucket: Any, key: Any, obj: Mapping[str, Any]) -> str | None:
    if not isinstance(bucket, str) or not bucket:
        return "s3.bucket.name is missing"
    if not isinstance(key, str) or not key:
        return "s3.object.key is missing"
    if not isinstance(obj.get("eTag"), str) or not obj["eTag"]:
        return "s3.object.eTag is missing"
    size = obj.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return f"s3.object.size is {size!r}, not a byte count"
    return None


def _not_s3(event: Mapping[str, Any]) -> str:
    if event.get("Event") == "s3:TestEvent":
        return "an S3 test event (s3:TestEvent), sent when notifications are set up: nothing to ingest"
    if "detail-type" in event:
        return (
            f"an EventBridge event ({event.get('detail-type')!r}); IngestFile takes the bucket's "
            "S3 event notifications"
        )
    keys = ", ".join(repr(k) for k in list(event)[:5]) or "none"
    return f"the event has no 'Records' (its keys: {keys}); IngestFile takes S3 event notifications"


def _kind(value: object) -> str:
    return "null" if value is None else f"a {type(value).__name__}"
