"""Change-only sync (issue 14): post only the rows that are new or changed since the last load.

Rooms: ``fingerprint`` (keyed hashes of record keys and canonically encoded rows), ``entries``
(values), ``decide`` (pure decision and counts), ``modes`` (the setting, the schema and the file's
``monetate-sync=all`` override), ``ledger`` (protocol), ``dynamo`` (DynamoDB store), ``memory``
(in-memory store), ``session`` (one source's classify, post, record), ``dynamo_admin`` (the
operator's ``status`` / ``forget`` of one schema: ``sync status`` / ``sync forget`` in the CLI).

Wiring (the writers call these; nothing here imports them): each writer's handler builds one
:class:`~monetate_ingest.sync.factory.SyncSource` per container (``sync_from_settings``: the
``SYNC_LEDGER_TABLE`` ledger, the hashing key from the API user's private key, the mode), and
asks it for a session per file or message batch. IngestFile: ``ingest/change_sync.py`` (per batch,
in the scheduler's worker, after per-key order; a file forcing a full post writes without looking
up). PostRecords: ``records/change_sync.py`` (per batch and schema, source time from a parked
envelope's ``source.time``/``etag``/``lines`` or the message's sent time).
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
