"""Change-only sync (issue 14): post only the rows that are new or changed since the last load.

Rooms: ``fingerprint`` (keyed hashes of record keys and canonically encoded rows), ``entries``
(values), ``decide`` (pure decision and counts), ``modes`` (the setting, the schema and the file's
``monetate-sync=all`` override), ``ledger`` (protocol), ``dynamo`` (DynamoDB store), ``memory``
(in-memory store), ``session`` (one source's classify, post, record), ``dynamo_admin`` (the
operator's ``status`` / ``forget`` of one schema: ``sync status`` / ``sync forget`` in the CLI).

Wiring (the writers call these; nothing here imports them):

IngestFile, once per file, after the schema is known::

    hasher = LedgerHasher(ledger_secret(credentials.private_key), retailer, environment, schema.name)
    mode = effective_mode(settings.sync.mode, schema, forced=forced_full(tags, metadata))
    session = SyncSession(DynamoLedger(settings.sync.ledger_table), hasher,
                          unique_key=schema.unique_key, mode=mode,
                          full_every_days=settings.sync.full_every_days, dry_run=dry_run)

  per valid row: ``sync_row = session.row(coerced, SourceTime(last_modified_epoch, etag, line))``;
  per window of rows, after the file's earlier rows of the same keys settled:
  ``decisions = session.classify(sync_rows)`` — rows whose ``decision.posts`` go to batching,
  the others count as ``unchanged`` (the report's ``counts.unchanged = session.counts.unchanged``);
  after each 201: ``session.posted(sync_rows_of_that_batch)``; parked batches carry each row's
  source (``time``, ``origin``, ``line``) in the envelope's ``source`` so PostRecords can record
  them. The report gets ``"sync": session.counts.to_dict()``.

PostRecords, per message batch: the same session with ``SourceTime(sent_time, origin, line)``
(a parked envelope's file source, else the message's ``SentTimestamp`` / 1000 and message id);
``classify`` before merging, ``posted`` after 201; a message whose rows are all unchanged ends as
posted.
"""

from monetate_ingest.sync.decide import Decision, SyncCounts, decide, decide_all
from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.dynamo_admin import LedgerAdminError
from monetate_ingest.sync.entries import LedgerEntry, SourceTime, SyncRow
from monetate_ingest.sync.fingerprint import LedgerHasher, canonical_encoding, ledger_secret
from monetate_ingest.sync.ledger import Ledger, LedgerAdmin, LedgerStatus, Lookup, WriteOutcome
from monetate_ingest.sync.memory import InMemoryLedger
from monetate_ingest.sync.modes import FORCE_NAME, FORCE_VALUE, effective_mode, forced_full
from monetate_ingest.sync.session import SyncSession

__all__ = [
    "FORCE_NAME",
    "FORCE_VALUE",
    "Decision",
    "DynamoLedger",
    "InMemoryLedger",
    "Ledger",
    "LedgerAdmin",
    "LedgerAdminError",
    "LedgerEntry",
    "LedgerHasher",
    "LedgerStatus",
    "Lookup",
    "SourceTime",
    "SyncCounts",
    "SyncRow",
    "SyncSession",
    "WriteOutcome",
    "canonical_encoding",
    "decide",
    "decide_all",
    "effective_mode",
    "forced_full",
    "ledger_secret",
]
