"""``redrive`` (records DLQ back to the records queue) and ``report KEY`` (a readable summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monetate_ingest.cli.common import CliError, Context
from monetate_ingest.cli.summary import describe
from monetate_ingest.ingest.s3_layout import FileRef, route

REPORTS = "reports/"


def redrive(ctx: Context) -> int:
    from monetate_ingest.records.redrive import redrive as move

    dlq = ctx.env("RECORDS_DLQ_URL", ctx.args.dlq_url, "--dlq-url")
    queue = ctx.env("RECORDS_QUEUE_URL", ctx.args.queue_url, "--queue-url")
    if dlq == queue:
        raise CliError("the dead-letter queue and the records queue are the same queue")
    moved = move(ctx.aws("sqs"), dlq, queue, wait_seconds=ctx.args.wait)
    ctx.print(f"moved {moved:,} message{'s' if moved != 1 else ''} from {dlq} to {queue}")
    return 0


def report(ctx: Context) -> int:
    key: str = ctx.args.key
    local = Path(key).expanduser()
    if key.endswith(".json") and local.is_file():
        data = _parse(local.read_bytes(), str(local))
        where = str(local)
        locate: Any = str
    else:
        bucket, report_key = report_location(key, ctx.args.bucket or ctx.environ.get("DATA_BUCKET"))
        where = f"s3://{bucket}/{report_key}"
        data = _parse(_fetch(ctx, bucket, report_key), where)

        def locate(rejects_key: str) -> str:
            return f"s3://{bucket}/{rejects_key}"

    if ctx.args.json:
        ctx.print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    ctx.print(f"report:      {where}")
    for line in describe(data, locate=locate):
        ctx.print(line)
    return 0


def report_location(key: str, bucket: str | None) -> tuple[str, str]:
    """(bucket, report key) for an incoming key, a report key or an ``s3://`` URL."""
    if key.startswith("s3://"):
        bucket, _, key = key[len("s3://") :].partition("/")
        if not bucket or not key:
            raise CliError(f"expected s3://BUCKET/KEY, got {key!r}")
    if not bucket:
        raise CliError("set DATA_BUCKET or pass --bucket (or give an s3://BUCKET/KEY URL)")
    key = key.lstrip("/")
    if key.startswith(REPORTS):
        if not key.endswith(".report.json"):
            raise CliError(f"{key!r} is under reports/ but is not a .report.json")
        return bucket, key
    ref = route(bucket, key, etag="", size=0)
    if not isinstance(ref, FileRef):
        raise CliError(
            f"{key!r} is not a file key (incoming/<schema>/<file> or dry-run/<schema>/<file>) "
            "nor a report key (reports/<schema>/<file>.report.json)"
        )
    return bucket, ref.report_key


def _fetch(ctx: Context, bucket: str, key: str) -> bytes:
    s3 = ctx.aws("s3")
    try:
        return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("NoSuchKey", "404", "NotFound"):
            raise CliError(
                f"no report at s3://{bucket}/{key}: the file has not been processed yet, or the key "
                "is wrong (reports are written when a file ends or pauses)"
            ) from None
        if code == "NoSuchBucket":
            raise CliError(f"no bucket named {bucket!r}") from None
        raise


def _parse(body: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CliError(f"{where} is not JSON") from None
    if not isinstance(data, dict) or "counts" not in data:
        raise CliError(f"{where} is not a monetate-ingest report")
    return data
