"""Credentials: secret parsing, clear errors without key material, Secrets Manager reads (moto)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from cryptography.hazmat.primitives import serialization
from monetate_ingest.monetate.credentials import Credentials, SecretCredentials, parse_secret
from monetate_ingest.monetate.exceptions import CredentialsError, TransientApiError
from moto import mock_aws


def assert_no_secret(exc: BaseException, key_pair: Any, text: str | None = None) -> None:
    """The error's message and repr hold no PEM line or secret text, and chain nothing."""
    shown = f"{exc!s}\n{exc!r}"
    for line in key_pair.body_lines:
        assert line not in shown
    if text is not None and len(text) > 20:
        assert text not in shown
    assert exc.__cause__ is None
    assert exc.__context__ is None


# --- parse_secret: the happy paths -------------------------------------------------------------


@pytest.mark.parametrize("form", ["pkcs8_pem", "pkcs1_pem"])
def test_parses_pkcs8_and_pkcs1_keys(form: str, key_pair: Any, make_secret: Callable[..., str]) -> None:
    # Given a secret holding the key in PKCS#8 or PKCS#1 form
    text = make_secret(pem=getattr(key_pair, form))
    # When it is parsed
    creds = parse_secret(text)
    # Then the username, RS256 default and the same RSA key come back
    assert creds.username == "api-123-example"
    assert creds.algorithm == "RS256"
    assert creds.private_key.private_numbers() == key_pair.private_key.private_numbers()


@pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512", "rs512"])
def test_accepts_each_algorithm(algorithm: str, make_secret: Callable[..., str]) -> None:
    # Given a secret naming an algorithm  When parsed  Then it is kept (upper-cased)
    assert parse_secret(make_secret(algorithm=algorithm)).algorithm == algorithm.upper()


def test_accepts_literal_backslash_n_escapes(key_pair: Any) -> None:
    # Given a PEM pasted with literal "\n" sequences instead of newlines
    pasted = key_pair.pkcs8_pem.replace("\n", "\\n")
    text = json.dumps({"username": "api-1", "private_key": pasted})
    assert "\\\\n" in text
    # When parsed  Then the key loads
    assert parse_secret(text).private_key.key_size == 2048


def test_accepts_pem_flattened_onto_one_line(key_pair: Any) -> None:
    # Given a PEM whose body lines were joined with spaces (pasted into a web form)
    flat = key_pair.pkcs1_pem.replace("\n", " ")
    # When parsed  Then the key loads
    assert parse_secret(json.dumps({"username": "api-1", "private_key": flat})).private_key


def test_accepts_bytes(secret_text: str) -> None:
    # Given the secret as bytes (SecretBinary)  When parsed  Then it works like text
    assert parse_secret(secret_text.encode()).username == "api-123-example"


def test_repr_and_str_hide_the_key(key_pair: Any, secret_text: str) -> None:
    # Given parsed credentials
    creds = parse_secret(secret_text)
    # When shown
    shown = repr(creds) + str(creds) + f"{creds}"
    # Then the username is there and neither PEM lines nor the private exponent are
    assert "api-123-example" in shown and "hidden" in shown
    for line in key_pair.body_lines:
        assert line not in shown
    assert str(key_pair.private_key.private_numbers().d) not in shown


# --- parse_secret: every failure is a clear CredentialsError -------------------------------


def _bad_secrets(key_pair: Any, ec_pem: str) -> list[tuple[str, str, str]]:
    pkcs8 = key_pair.pkcs8_pem
    lines = pkcs8.splitlines()
    truncated = "\n".join(lines[:5] + lines[-1:])
    encrypted = key_pair.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    obj = {"username": "api-1", "private_key": pkcs8}
    return [
        ("not json", pkcs8, "not JSON"),
        ("truncated json", json.dumps(obj)[:-30], "not JSON"),
        ("array", json.dumps([obj]), "JSON object"),
        ("missing username", json.dumps({"private_key": pkcs8}), '"username" key is missing'),
        ("empty username", json.dumps({**obj, "username": "  "}), '"username" must be'),
        ("numeric username", json.dumps({**obj, "username": 7}), '"username" must be'),
        ("missing key", json.dumps({"username": "api-1"}), '"private_key" key is missing'),
        ("key not a string", json.dumps({**obj, "private_key": ["x"]}), '"private_key" must be'),
        ("key not PEM", json.dumps({**obj, "private_key": "".join(lines[1:-1])}), "not a PEM block"),
        ("corrupt PEM", json.dumps({**obj, "private_key": truncated}), "corrupt or truncated"),
        ("public key", json.dumps({**obj, "private_key": key_pair.public_pem}), "not the private key"),
        ("EC key", json.dumps({**obj, "private_key": ec_pem}), "Monetate needs an RSA key"),
        ("encrypted key", json.dumps({**obj, "private_key": encrypted}), "passphrase"),
        ("bad algorithm", json.dumps({**obj, "algorithm": "HS256"}), "RS256, RS384, RS512"),
        ("algorithm not str", json.dumps({**obj, "algorithm": 256}), "must be one of"),
    ]


def test_every_malformed_secret_is_a_clear_error_without_key_material(
    key_pair: Any, ec_private_pem: str
) -> None:
    for name, text, expected in _bad_secrets(key_pair, ec_private_pem):
        # Given a malformed secret  When parsed
        with pytest.raises(CredentialsError) as caught:
            parse_secret(text)
        # Then the message says what is wrong, and shows no key material nor the secret
        assert expected in str(caught.value), name
        assert_no_secret(caught.value, key_pair, text)
        assert caught.value.kind == "configuration"
        assert not caught.value.retryable


def test_ec_key_lines_are_not_shown(ec_private_pem: str) -> None:
    # Given a non-RSA key  When parsed  Then its PEM body does not leak either
    with pytest.raises(CredentialsError) as caught:
        parse_secret(json.dumps({"username": "u", "private_key": ec_private_pem}))
    for line in ec_private_pem.splitlines()[1:-1]:
        assert line not in str(caught.value)


# --- SecretCredentials with a fake fetch ---------------------------------------------------


class FakeFetch:
    """Scripted secret values; records every call's keyword arguments."""

    def __init__(self, *values: str | Exception) -> None:
        self.values = list(values)
        self.calls: list[dict[str, Any]] = []

    def __call__(self, secret_id: str, **kwargs: Any) -> str:
        self.calls.append({"secret_id": secret_id, **kwargs})
        value = self.values[0] if len(self.values) == 1 else self.values.pop(0)
        if isinstance(value, Exception):
            raise value
        return value


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_get_caches_for_max_age_and_parses_once_per_value(secret_text: str) -> None:
    # Given a source with max_age 300 and a fake clock
    fetch, clock = FakeFetch(secret_text), Clock()
    source = SecretCredentials("prod/monetate", max_age=300, fetch=fetch, clock=clock)
    # When read twice within max_age
    first, second = source.get(), source.get()
    # Then one fetch, with Powertools' arguments, and the same object
    assert first is second and source.reads == 1
    assert fetch.calls == [{"secret_id": "prod/monetate", "max_age": 300, "force_fetch": False}]
    # When max_age has passed and the value is unchanged
    clock.now = 301
    third = source.get()
    # Then it was re-read but not re-parsed
    assert source.reads == 2 and third is first


def test_refresh_forces_a_read_and_picks_up_rotation(
    secret_text: str, make_secret: Callable[..., str], other_key_pair: Any
) -> None:
    # Given a source that has read the old secret, and a rotated one behind it
    rotated = make_secret(username="api-123-example", pem=other_key_pair.pkcs1_pem)
    fetch = FakeFetch(secret_text, rotated)
    source = SecretCredentials("s", fetch=fetch, clock=Clock())
    old = source.get()
    # When refreshed
    new = source.refresh()
    # Then the read was forced and the new key is used
    assert fetch.calls[-1]["force_fetch"] is True
    assert new is not old
    assert new.private_key.private_numbers() == other_key_pair.private_key.private_numbers()
    assert source.get() is new


def test_fetch_errors_name_the_secret_and_cause() -> None:
    # Given a provider error wrapping an AWS error (as Powertools' GetParameterError does)
    def fetch(secret_id: str, **_: Any) -> str:
        try:
            raise _client_error("AccessDeniedException")
        except Exception as exc:
            raise parameters.exceptions.GetParameterError(str(exc)) from exc

    source = SecretCredentials("prod/monetate", fetch=fetch)
    # When read
    with pytest.raises(CredentialsError) as caught:
        source.get()
    # Then the message names the secret and the cause, and nothing is chained
    message = str(caught.value)
    assert "'prod/monetate'" in message and "GetParameterError" in message
    assert "AccessDeniedException" in message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_throttling_is_transient() -> None:
    # Given Secrets Manager throttling  When read  Then a transient error
    source = SecretCredentials("s", fetch=FakeFetch(_client_error("ThrottlingException")))
    with pytest.raises(TransientApiError, match="ThrottlingException"):
        source.get()


def _client_error(code: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "denied"}}, "GetSecretValue")


# --- SecretCredentials through real Powertools get_secret and moto ---------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A moto-mocked Secrets Manager (no sockets), with Powertools' caches cleared."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    parameters_base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]
    with mock_aws():
        yield boto3.client("secretsmanager")
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    parameters_base.DEFAULT_PROVIDERS.clear()  # type: ignore[attr-defined]


def test_reads_the_secret_through_powertools_and_refresh_rereads(
    aws: Any, secret_text: str, make_secret: Callable[..., str]
) -> None:
    # Given the secret in Secrets Manager
    aws.create_secret(Name="monetate/acme", SecretString=secret_text)
    source = SecretCredentials("monetate/acme", max_age=300)
    # When read
    assert source.get().username == "api-123-example"
    # And the secret is rotated in Secrets Manager
    aws.put_secret_value(SecretId="monetate/acme", SecretString=make_secret(username="api-456-rotated"))
    # Then a plain get still answers from cache, and refresh() re-reads
    assert source.get().username == "api-123-example"
    assert source.refresh().username == "api-456-rotated"
    assert source.reads == 2


def test_missing_secret_is_a_credentials_error(aws: Any) -> None:
    # Given no such secret  When read  Then CredentialsError naming the id and the AWS code
    source = SecretCredentials("monetate/missing")
    with pytest.raises(CredentialsError) as caught:
        source.get()
    assert "'monetate/missing'" in str(caught.value)
    assert "ResourceNotFoundException" in str(caught.value)


def test_malformed_secret_in_secrets_manager(aws: Any, key_pair: Any) -> None:
    # Given a secret holding a PEM without the JSON wrapper
    aws.create_secret(Name="monetate/bad", SecretString=key_pair.pkcs8_pem)
    # When read  Then a clear error, no key material
    with pytest.raises(CredentialsError, match="not JSON") as caught:
        SecretCredentials("monetate/bad").get()
    assert_no_secret(caught.value, key_pair, key_pair.pkcs8_pem)


def test_credentials_are_plain_values(key_pair: Any) -> None:
    # Given credentials built directly  Then they are frozen
    creds = Credentials("u", key_pair.private_key, "RS384")
    with pytest.raises(AttributeError):
        creds.username = "other"  # type: ignore[misc]
