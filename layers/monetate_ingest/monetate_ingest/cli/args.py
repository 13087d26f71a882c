"""The argument parser: subcommands, global flags and argument validation (stdlib only).

Each subcommand names its implementation as ``"module:function"``; :func:`monetate_ingest.cli.main`
imports it only when that command runs, so ``--help`` and argument errors stay fast and importing
this package loads neither boto3 nor requests.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import Any

PROG = "monetate-ingest"
FIELD_TYPES = ("STRING", "MULTI_STRING", "NUMBER", "DATETIME", "BOOLEAN")
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_BATCH_ROWS = 10_000
MAX_CONCURRENCY = 64
SYNC_MODES = ("changes", "all")

DESCRIPTION = """\
Operate the monetate-ingest bundle from a laptop: try the credentials, inspect and extend schemas,
push a file through the same pipeline as IngestFile, replay the dead-letter queue, read reports,
see or reset one schema's change-only sync ledger.

Settings come from the environment like the functions' (MONETATE_RETAILER, MONETATE_SECRET_ID,
MONETATE_API_URL, MONETATE_ENVIRONMENT, BATCH_MAX_ROWS, POST_CONCURRENCY, UNKNOWN_COLUMNS, ...);
--retailer, --secret-id and --api-url override them. AWS access uses boto3's own resolution
(--profile and --region, or AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL for a local stack).
"""

EPILOG = """\
exit status: 0 success (a pushed file that completed, even with rejected rows), 2 a bad argument,
a configuration or credentials error, or a failed file; 1 an unexpected error, or a `sync forget`
not confirmed; 130 interrupted.

examples:
  monetate-ingest check
  monetate-ingest schema show purchases
  monetate-ingest schema add-field purchases coupon_code STRING
  monetate-ingest push purchases-2024-05-01.csv --schema purchases --dry-run
  monetate-ingest push customers.csv --schema customers --sync changes
  monetate-ingest sync status customers
  monetate-ingest sync forget customers --yes
  monetate-ingest redrive
  monetate-ingest report incoming/purchases/2024-05-01.csv --bucket my-data-bucket
"""


def field_name(value: str) -> str:
    """A Monetate field name: a letter, then letters, digits or underscores."""
    if not FIELD_NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"invalid field name {value!r}: start with a letter and use only letters, digits and _"
        )
    return value


def field_type(value: str) -> str:
    upper = value.strip().upper()
    if upper not in FIELD_TYPES:
        raise argparse.ArgumentTypeError(
            f"invalid field type {value!r}: choose from {', '.join(FIELD_TYPES)}"
        )
    return upper


def schema_name(value: str) -> str:
    if not value.strip() or "/" in value or "?" in value or any(c.isspace() for c in value):
        raise argparse.ArgumentTypeError(f"invalid schema name {value!r}: no spaces, '/' or '?'")
    return value


def _int_in(lo: int, hi: int, what: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r}: expected a whole number") from None
        if not lo <= number <= hi:
            raise argparse.ArgumentTypeError(f"invalid {what} {value!r}: expected {lo} to {hi}")
        return number

    parse.__name__ = what
    return parse


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Flags accepted before or after the subcommand (sub-parsers suppress their defaults)."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    aws = parser.add_argument_group("AWS")
    aws.add_argument("--profile", default=default(None), help="AWS profile for boto3 (default: boto3's own)")
    aws.add_argument("--region", default=default(None), help="AWS region for boto3 (default: boto3's own)")
    monetate = parser.add_argument_group("Monetate (override the environment)")
    monetate.add_argument("--retailer", default=default(None), help="retailer shortname (MONETATE_RETAILER)")
    monetate.add_argument(
        "--secret-id", default=default(None), help="Secrets Manager id of the API user (MONETATE_SECRET_ID)"
    )
    monetate.add_argument(
        "--api-url", default=default(None), help="scheme and host of the Monetate APIs (MONETATE_API_URL)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default(False), help="log to stderr; tracebacks"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, target: str, help_text: str, **kw: object) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text, **kw)  # type: ignore[arg-type]
        sub.set_defaults(target=target)
        return sub

    command(
        "check",
        "monetate_ingest.cli.check:run",
        "read the secret, mint a token, show the API user, the token's expiry and the schemas",
    )

    schema = commands.add_parser("schema", help="show a schema or add a field to it", description="schemas")
    schema_commands = schema.add_subparsers(dest="schema_command", metavar="ACTION", required=True)
    show = schema_commands.add_parser(
        "show", parents=[common], help="the schema's fields as a table", description="show a schema's fields"
    )
    show.set_defaults(target="monetate_ingest.cli.schema_cmd:show")
    show.add_argument("name", metavar="NAME", type=schema_name, help="schema (dataset) name")
    add = schema_commands.add_parser(
        "add-field",
        parents=[common],
        help="add a field to the schema (PATCH)",
        description=f"add a field to a schema; TYPE is one of {', '.join(FIELD_TYPES)}",
    )
    add.set_defaults(target="monetate_ingest.cli.schema_cmd:add_field")
    add.add_argument("name", metavar="NAME", type=schema_name, help="schema (dataset) name")
    add.add_argument("field", metavar="FIELD", type=field_name, help="new field name ([A-Za-z][A-Za-z0-9_]*)")
    add.add_argument("type", metavar="TYPE", type=field_type, help=" | ".join(FIELD_TYPES))

    push = command(
        "push",
        "monetate_ingest.cli.push:run",
        "send a local file through the IngestFile pipeline; writes FILE.report.json and "
        "FILE.rejects.jsonl next to it",
    )
    push.add_argument("file", metavar="FILE", help=".csv, .jsonl, .ndjson or .json, optionally .gz")
    push.add_argument("--schema", required=True, type=schema_name, help="Monetate schema (dataset) name")
    push.add_argument("--dry-run", action="store_true", help="read, validate and report; post nothing")
    push.add_argument(
        "--batch-rows",
        type=_int_in(1, MAX_BATCH_ROWS, "batch row count"),
        help=f"rows per POST, 1 to {MAX_BATCH_ROWS} (default BATCH_MAX_ROWS or 500)",
    )
    push.add_argument(
        "--concurrency",
        type=_int_in(1, MAX_CONCURRENCY, "concurrency"),
        help=f"POSTs in flight, 1 to {MAX_CONCURRENCY} (default POST_CONCURRENCY or 4)",
    )
    push.add_argument(
        "--sync",
        choices=SYNC_MODES,
        help="change-only sync for this push, overriding SYNC_MODE: changes posts only new and changed "
        "rows (needs SYNC_LEDGER_TABLE), all posts every row",
    )
    push.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    redrive = command(
        "redrive",
        "monetate_ingest.cli.ops:redrive",
        "move the records DLQ's messages back to the records queue",
    )
    redrive.add_argument("--dlq-url", help="dead-letter queue URL (default RECORDS_DLQ_URL)")
    redrive.add_argument("--queue-url", help="records queue URL (default RECORDS_QUEUE_URL)")
    redrive.add_argument(
        "--wait",
        type=_int_in(0, 3600, "wait"),
        default=60,
        metavar="SECONDS",
        help="in AWS, wait up to this long for SQS's move task to finish (default 60)",
    )

    _sync_commands(commands, common)

    report = command("report", "monetate_ingest.cli.ops:report", "a readable summary of a file's report")
    report.add_argument(
        "key",
        metavar="KEY",
        help="incoming/<schema>/<file>, reports/<schema>/<file>.report.json, an s3:// URL, "
        "or a local FILE.report.json",
    )
    report.add_argument("--bucket", help="data bucket (default DATA_BUCKET)")
    report.add_argument("--json", action="store_true", help="print the report JSON as stored")
    return parser


def _sync_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """``sync status SCHEMA`` and ``sync forget SCHEMA [--yes]``."""
    sync = commands.add_parser(
        "sync",
        help="change-only sync: one schema's entries in the ledger (status, forget)",
        description="change-only sync: one schema's entries in the SYNC_LEDGER_TABLE ledger of "
        "MONETATE_RETAILER / MONETATE_ENVIRONMENT (both scan the whole table)",
    )
    actions = sync.add_subparsers(dest="sync_command", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        parents=[common],
        help="how many records the ledger holds for SCHEMA, its oldest and newest post",
        description="how many records the ledger holds for SCHEMA, when the oldest and the newest "
        "were posted, and when the oldest is posted again (SYNC_FULL_EVERY_DAYS)",
    )
    status.set_defaults(target="monetate_ingest.cli.sync_cmd:status")
    forget = actions.add_parser(
        "forget",
        parents=[common],
        help="drop SCHEMA's entries from the ledger: its next load posts every row",
        description="drop every ledger entry of SCHEMA (asks first unless --yes): the next load of "
        "SCHEMA posts every row and records it again",
    )
    forget.set_defaults(target="monetate_ingest.cli.sync_cmd:forget")
    forget.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    for sub in (status, forget):
        sub.add_argument("schema", metavar="SCHEMA", type=schema_name, help="schema (dataset) name")
        sub.add_argument("--table", help="the ledger table (default SYNC_LEDGER_TABLE)")
