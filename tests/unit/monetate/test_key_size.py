"""A private key shorter than 2048 bits is used, with one warning naming its size and never the key."""

from __future__ import annotations

import json
import logging
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from monetate_ingest.monetate.credentials import SecretCredentials
from monetate_ingest.monetate.jwt_signer import sign_jwt


@pytest.fixture(scope="module")
def short_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point)


def _secret(key: rsa.RSAPrivateKey) -> tuple[str, list[str]]:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    body = [line for line in pem.splitlines() if line and not line.startswith("-----")]
    return json.dumps({"username": "api-123-example", "private_key": pem}), body


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "RSA key" in r.getMessage()]


# PyJWT adds its own InsecureKeyLengthWarning (Python warnings, shown once per place by default).
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_1024_bit_key_is_used_with_one_warning(
    short_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a secret whose key has 1024 bits
    text, body_lines = _secret(short_key)
    source = SecretCredentials("prod/monetate", fetch=lambda secret_id, **_: text)
    caplog.set_level(logging.DEBUG)
    # When the credentials are read, read again, and re-read (same value)
    credentials = source.get()
    source.get()
    source.refresh()
    # Then the key is used: a JWT signed with it verifies with its public key
    token = sign_jwt(credentials, 1_700_000_000)
    claims: dict[str, Any] = jwt.decode(
        token, short_key.public_key(), algorithms=["RS256"], options={"verify_iat": False}
    )
    assert claims["username"] == "api-123-example"
    # And exactly one warning says the size and what is expected, and nothing of the key
    [warning] = _warnings(caplog)
    assert warning.getMessage() == "RSA key of 1024 bits; 2048 or more expected"
    logged = caplog.text + "\n".join(repr(r.__dict__) for r in caplog.records)
    assert not [line for line in body_lines if line in logged]
    assert token not in logged


def test_a_2048_bit_key_logs_no_warning(secret_text: str, caplog: pytest.LogCaptureFixture) -> None:
    # Given the usual 2048-bit key  When it is read  Then no key-size warning
    caplog.set_level(logging.DEBUG)
    SecretCredentials("prod/monetate", fetch=lambda secret_id, **_: secret_text).get()
    assert _warnings(caplog) == []
