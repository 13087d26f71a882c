"""``sync status SCHEMA`` and ``sync forget SCHEMA``: one schema's entries in the change-only sync ledger.

The ledger's ids are keyed hashes (``sync.fingerprint``): finding one schema's entries needs its
scope, the hash of retailer, environment and schema under the key derived from the Monetate API
user's private key. So both commands read the secret the way the other commands do (nothing of it
is printed) and make no call to Monetate. Both scan the whole table (``sync.dynamo_admin``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from monetate_ingest.cli.check import iso_utc
from monetate_ingest.cli.common import CliError, Context
from monetate_ingest.sync.decide import DAY
from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.factory import private_key_of
from monetate_ingest.sync.fingerprint import LedgerHasher, ledger_secret
from monetate_ingest.sync.ledger import LedgerAdmin, LedgerStatus

EXIT_NOT_CONFIRMED = 1


@dataclass(frozen=True)
class Target:
    """One schema's entries: where (table), whose (retailer, environment) and their id prefix."""

    table: str
    schema: str
    retailer: str
    environment: str
    full_every_days: int
    scope: str
    ledger: LedgerAdmin

    @property
    def label(self) -> str:
        return f"schema {self.schema} of {self.retailer}/{self.environment} in table {self.table}"


def target(ctx: Context) -> Target:
    """The ledger table (``--table`` or SYNC_LEDGER_TABLE), the settings and the schema's scope."""
    table = ctx.env("SYNC_LEDGER_TABLE", ctx.args.table, "--table")
    settings = ctx.settings({"SYNC_LEDGER_TABLE": table})
    monetate = settings.monetate
    key = private_key_of(ctx.client(settings))()
    hasher = LedgerHasher(ledger_secret(key), monetate.retailer, monetate.environment, ctx.args.schema)
    return Target(
        table=table,
        schema=ctx.args.schema,
        retailer=monetate.retailer,
        environment=monetate.environment,
        full_every_days=settings.sync.full_every_days,
        scope=hasher.scope,
        ledger=DynamoLedger(table, client=ctx.aws("dynamodb")),
    )


def status(ctx: Context) -> int:
    where = target(ctx)
    for line in describe_status(where, where.ledger.status(where.scope), now=time.time()):
        ctx.print(line)
    return 0


def forget(ctx: Context) -> int:
    where = target(ctx)
    question = f"forget every ledger entry of {where.label}? The next load of {where.schema} posts every row."
    if not ctx.args.yes and not ctx.confirm(question):
        raise CliError("not confirmed: nothing was forgotten", code=EXIT_NOT_CONFIRMED)
    dropped = where.ledger.forget(where.scope)
    noun = "entry" if dropped == 1 else "entries"
    ctx.print(f"forgot {dropped:,} ledger {noun} of {where.label}")
    ctx.print(f"the next load of {where.schema} posts every row")
    return 0


def describe_status(where: Target, found: LedgerStatus, *, now: float) -> list[str]:
    """The lines of ``sync status``: the ledger, the count, the oldest and newest post, the next full post."""
    days = where.full_every_days
    lines = [f"ledger:      {where.label}"]
    if found.oldest_post is None or found.newest_post is None:
        lines.append(
            f"records:     0 (nothing of {where.schema} loaded with SYNC_MODE=changes yet, or forgotten): "
            f"the next load of {where.schema} posts every row"
        )
        return lines
    lines.append(f"records:     {found.records:,}")
    again = found.oldest_post + days * DAY
    when = (
        f"the oldest will be posted again at the first load after {iso_utc(again)}"
        if again > now
        else "the oldest is due: it is posted again at the next load"
    )
    lines += [
        f"oldest post: {iso_utc(found.oldest_post)}",
        f"newest post: {iso_utc(found.newest_post)}",
        f"full every:  {days} day{'s' if days != 1 else ''} (SYNC_FULL_EVERY_DAYS): {when}",
    ]
    return lines
