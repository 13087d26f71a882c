"""Building one source's :class:`SyncSession`: the ledger, the hashing key, the mode.

:class:`SyncSource` is made once per container by a writer's handler (the ledger and the way to
reach the hashing key are shared); :meth:`SyncSource.session` makes the session of one file or one
message batch. With ``SYNC_MODE=all``, a schema without a unique key, or a file forcing a full
post, the session is inactive: every row is new and nothing is looked up or written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from monetate_ingest.monetate.schema import SchemaSpec
from monetate_ingest.once import Once
from monetate_ingest.settings import MonetateSettings, SyncSettings
from monetate_ingest.sync.decide import SyncMode
from monetate_ingest.sync.dynamo import DynamoLedger
from monetate_ingest.sync.fingerprint import LedgerHasher, ledger_secret
from monetate_ingest.sync.ledger import Ledger
from monetate_ingest.sync.memory import InMemoryLedger
from monetate_ingest.sync.modes import effective_mode
from monetate_ingest.sync.session import SyncSession


@dataclass
class SyncSource:
    """What every session of one writer shares.

    ``secret()`` returns the ledger's hashing key (``ledger_secret`` of the Monetate API user's
    private key, read when the first active session is made: an inactive one needs no key).
    """

    mode: SyncMode
    full_every_days: int
    ledger: Ledger
    secret: Callable[[], bytes] = field(repr=False)
    retailer: str
    environment: str
    clock: Callable[[], float] = time.time
    metrics_sink: Any = None

    def session(
        self, schema: SchemaSpec, *, dry_run: bool = False, forced: bool = False, metrics_sink: Any = None
    ) -> SyncSession:
        """The session of one file or message batch of ``schema`` (its ledger metrics go to
        ``metrics_sink``, else to the source's, else to Powertools' ``metrics``)."""
        mode = effective_mode(self.mode, schema, forced=forced)
        unique_key = schema.unique_key or ""
        secret = self.secret() if mode == "changes" else b"\0" * 32  # inactive: never used
        hasher = LedgerHasher(secret, self.retailer, self.environment, schema.name)
        return SyncSession(
            self.ledger,
            hasher,
            unique_key=unique_key,
            mode=mode,
            full_every_days=self.full_every_days,
            dry_run=dry_run,
            clock=self.clock,
            metrics_sink=metrics_sink if metrics_sink is not None else self.metrics_sink,
        )


def sync_off() -> SyncSource:
    """A source whose sessions are all inactive (``SYNC_MODE=all``; tests and the CLI default)."""
    return SyncSource("all", 7, InMemoryLedger(), lambda: b"\0" * 32, "-", "-")


def sync_from_settings(
    settings: SyncSettings,
    monetate: MonetateSettings,
    private_key: Callable[[], RSAPrivateKey],
    *,
    client: Any = None,
) -> SyncSource:
    """The writers' AWS default: the ``SYNC_LEDGER_TABLE`` ledger in DynamoDB (``client``: a boto3
    DynamoDB client, made on first use when None), the key derived from ``private_key()``."""
    if not settings.enabled or not settings.ledger_table:
        return sync_off()
    ledger = DynamoLedger(settings.ledger_table, client=client)
    secret = Once(lambda: ledger_secret(private_key()))
    return SyncSource(
        settings.mode,
        settings.full_every_days,
        ledger,
        secret.get,
        monetate.retailer,
        monetate.environment,
    )


def private_key_of(client: Any) -> Callable[[], RSAPrivateKey]:
    """The Monetate API user's private key as the shared client reads it (Secrets Manager)."""

    def read() -> RSAPrivateKey:
        credentials = client.credentials
        if credentials is None:
            raise RuntimeError("the Monetate client has no credentials source")
        key: RSAPrivateKey = credentials.get().private_key
        return key

    return read
