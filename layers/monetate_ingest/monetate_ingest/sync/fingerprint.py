"""What the ledger holds instead of customer data: keyed hashes of record keys and of rows.

A row's fingerprint is the keyed BLAKE2b-128 of its canonical encoding: the coerced row (see
``formats.coercion``) with its fields sorted by name and its numbers canonical, so ``1e3`` and
``1000`` (coerced to ``1000.0`` and ``1000``), ``yes`` and ``TRUE`` (both ``true``), a date and its
UTC midnight (both ``…T00:00:00Z``) and a reordered CSV column give the same fingerprint, while a
MULTI_STRING's item order counts (it is one string). A record key's id is the keyed hash of
retailer, environment, schema and unique-key value, prefixed by the hash of the first three (the
scope, so one schema's entries can be found without knowing its keys).

Keyed, not plain: unique keys are often guessable (e-mail addresses, sequential customer numbers),
so a plain hash could be reversed by hashing candidates; without the key nobody with read access
to the table can. The key is derived from the Monetate API user's private key, which both writers
already read (:func:`ledger_secret`): no new secret to provision, and rotating the API key starts
a fresh ledger (the next load posts every row once; old entries expire by TTL).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from hashlib import blake2b
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

#: Bytes of a fingerprint and of a record key's hash (128 bits: collisions need ~2**64 rows).
DIGEST_SIZE = 16
SCOPE_SIZE = 8
_MAX_EXACT = 2**53


def canonical_value(value: Any) -> Any:
    """``value`` with numbers canonical: a whole float is an int, ``-0.0`` is ``0``."""
    if value.__class__ is float:
        if value.is_integer() and -_MAX_EXACT <= value <= _MAX_EXACT:
            return int(value)
        return value
    if isinstance(value, list):
        return [canonical_value(item) for item in value]
    if isinstance(value, dict):
        return {key: canonical_value(item) for key, item in value.items()}
    return value


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_encoding(row: Mapping[str, Any]) -> bytes:
    """The coerced row as compact UTF-8 JSON, fields sorted by name, absent (None) fields left out.

    Only floats (and lists or objects that may hold them) need :func:`canonical_value`; strings,
    booleans and ints go as they are (this runs for every row of a synced file: ~2x faster so).
    """
    values: dict[str, Any] = {}
    for name, value in row.items():
        if value is None:
            continue
        cls = value.__class__
        if cls is float or cls is dict or (cls is list and any(item.__class__ is not str for item in value)):
            value = canonical_value(value)
        values[name] = value
    return _ENCODER.encode(values).encode()


def ledger_secret(private_key: RSAPrivateKey) -> bytes:
    """The 32-byte hashing key, derived one-way from the Monetate API user's private key."""
    der = private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return blake2b(der, digest_size=32, person=b"mi-sync-ledger").digest()


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class LedgerHasher:
    """Hashes record keys and rows of one schema of one retailer and environment."""

    secret: bytes = field(repr=False)
    retailer: str
    environment: str
    schema: str

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("the ledger hashing key must be at least 16 bytes")

    @cached_property
    def scope(self) -> str:
        """The id prefix of this schema's entries (hash of retailer, environment, schema)."""
        data = "\0".join((self.retailer, self.environment, self.schema)).encode()
        return _b64(blake2b(data, key=self.secret, digest_size=SCOPE_SIZE, person=b"scope").digest())

    @cached_property
    def _key_hash(self) -> Any:
        """The keyed hash of record keys with this schema's prefix already fed (copied per key)."""
        base = blake2b(key=self.secret, digest_size=DIGEST_SIZE, person=b"record-key")
        base.update("\0".join((self.retailer, self.environment, self.schema, "")).encode())
        return base

    @cached_property
    def _row_hash(self) -> Any:
        return blake2b(key=self.secret, digest_size=DIGEST_SIZE, person=b"row")

    def key_id(self, unique_key: str) -> str:
        """The ledger id of a record: ``<scope>.<hash of retailer, environment, schema, key>``."""
        digest = self._key_hash.copy()
        digest.update(unique_key.encode())
        return f"{self.scope}.{_b64(digest.digest())}"

    def fingerprint(self, row: Mapping[str, Any]) -> bytes:
        """The keyed fingerprint of a coerced row."""
        digest = self._row_hash.copy()
        digest.update(canonical_encoding(row))
        result: bytes = digest.digest()
        return result

    def fingerprint_encoded(self, encoded: bytes | str) -> bytes:
        """The fingerprint of a row already encoded as JSON (the CSV fast path's bytes)."""
        return self.fingerprint(json.loads(encoded))
