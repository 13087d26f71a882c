"""The Monetate API user's credentials: parsed from the secret, read through Powertools Parameters.

Every failure is a :class:`CredentialsError` whose message says what is wrong and never contains
the secret text or key material. Errors are raised *outside* ``except`` blocks so that neither
``__cause__`` nor ``__context__`` carries the original exception (a ``JSONDecodeError`` keeps the
whole document in ``.doc``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from monetate_ingest.monetate.exceptions import CredentialsError, TransientApiError
from monetate_ingest.observability import logger

Algorithm = Literal["RS256", "RS384", "RS512"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "RS384", "RS512")

#: A shorter private key is used but logged as a warning (NIST: RSA under 2048 bits is too weak).
MIN_KEY_BITS = 2048
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
#: Secrets Manager failures worth retrying later (error codes or botocore exception names).
_TRANSIENT_MARKERS = ("Throttl", "InternalService", "Timeout", "Endpoint", "ConnectionClosed")


@dataclass(frozen=True, eq=False)
class Credentials:
    """Username, RSA private key object and JWT algorithm. ``repr``/``str`` never show the key."""

    username: str
    private_key: RSAPrivateKey = field(repr=False)
    algorithm: Algorithm = "RS256"

    def __repr__(self) -> str:
        bits = self.private_key.key_size
        return (
            f"Credentials(username={self.username!r}, algorithm={self.algorithm!r}, "
            f"private_key=<RSA {bits}-bit, hidden>)"
        )

    __str__ = __repr__


def parse_secret(text: str | bytes) -> Credentials:
    """Validate the secret's JSON shape and load its PEM key; :class:`CredentialsError` if wrong.

    A key shorter than ``MIN_KEY_BITS`` is accepted with one warning naming its size (never the key).
    """
    data, problem = _load_json(text)
    if problem is None:
        problem = _check_shape(data)
    if problem is not None:
        raise CredentialsError(f"the Monetate secret is malformed: {problem}")
    fields = cast(dict[str, Any], data)
    key, problem = _load_key(fields["private_key"])
    if problem is not None or key is None:
        raise CredentialsError(f"the Monetate secret's private_key {problem}")
    algorithm = cast(Algorithm, str(fields.get("algorithm") or "RS256").upper())
    if key.key_size < MIN_KEY_BITS:  # still used: refusing it is Monetate's call, not ours
        logger.warning(
            f"RSA key of {key.key_size} bits; {MIN_KEY_BITS} or more expected",
            extra={"key_bits": key.key_size},
        )
    return Credentials(username=fields["username"].strip(), private_key=key, algorithm=algorithm)


def _load_json(text: str | bytes) -> tuple[Any, str | None]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None, "it is not UTF-8 text"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"it is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"


def _check_shape(data: Any) -> str | None:
    if not isinstance(data, dict):
        return f'expected a JSON object {{"username": ..., "private_key": ...}}, got {_kind(data)}'
    username = data.get("username")
    if username is None:
        return 'the "username" key is missing'
    if not isinstance(username, str) or not username.strip():
        return f'"username" must be a non-empty string, got {_kind(username)}'
    private_key = data.get("private_key")
    if private_key is None:
        return 'the "private_key" key is missing'
    if not isinstance(private_key, str) or not private_key.strip():
        return f'"private_key" must be a non-empty PEM string, got {_kind(private_key)}'
    algorithm = data.get("algorithm")
    if algorithm is not None and (not isinstance(algorithm, str) or algorithm.upper() not in ALGORITHMS):
        shown = repr(algorithm) if isinstance(algorithm, str) and len(algorithm) <= 10 else _kind(algorithm)
        return f'"algorithm" must be one of {", ".join(ALGORITHMS)}, got {shown}'
    return None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _normalise_pem(raw: str) -> tuple[str | None, bytes | None]:
    """Return (label, canonical PEM bytes); repairs literal ``\\n`` escapes and re-wrapped bodies."""
    text = raw.replace("\\r", "").replace("\\n", "\n").replace("\r", "").strip()
    match = _PEM.search(text)
    if match is None:
        return None, None
    label, body = match.group(1), match.group(2)
    if "Proc-Type:" in body:
        return "ENCRYPTED " + label, None
    b64 = "".join(body.split())
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    pem = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----", ""])
    return label, pem.encode("ascii", "replace")


def _load_key(raw: str) -> tuple[RSAPrivateKey | None, str | None]:
    label, pem = _normalise_pem(raw)
    if label is None:
        return None, "is not a PEM block (expected '-----BEGIN PRIVATE KEY-----' or 'RSA PRIVATE KEY')"
    if "ENCRYPTED" in label:
        return None, "is encrypted with a passphrase; store it unencrypted (PKCS#1 or PKCS#8)"
    if "PUBLIC" in label or "CERTIFICATE" in label:
        return None, f"is a {label.lower()}, not the private key"
    if not label.endswith("PRIVATE KEY"):
        return None, f"is a PEM '{label}' block, not a private key"
    key: object = None
    problem: str | None = None
    try:
        key = serialization.load_pem_private_key(cast(bytes, pem), password=None)
    except TypeError:
        problem = "is encrypted with a passphrase; store it unencrypted (PKCS#1 or PKCS#8)"
    except UnsupportedAlgorithm:
        problem = "uses a key type this runtime cannot load; Monetate needs an RSA key"
    except ValueError:
        problem = "could not be loaded: the PEM body is corrupt or truncated"
    if problem is not None:
        return None, problem
    if not isinstance(key, RSAPrivateKey):
        kind = type(key).__name__.removesuffix("PrivateKey").lstrip("_") or "non-RSA"
        return None, f"is a {kind} key; Monetate needs an RSA key (RS256/RS384/RS512)"
    return key, None


# --- Secrets Manager -------------------------------------------------------------------------


def _powertools_fetch(secret_id: str, *, max_age: int, force_fetch: bool = False) -> str | bytes:
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters import base

    providers: dict[str, Any] = base.DEFAULT_PROVIDERS  # type: ignore[attr-defined]
    if "secrets" not in providers:
        # Powertools would build its provider on a new boto3 Session, loading botocore's endpoint
        # data and service models again (about 0.1 s of a cold start); give it a client from the
        # default session, which the function's other clients share.
        import boto3

        providers["secrets"] = parameters.SecretsProvider(boto3_client=boto3.client("secretsmanager"))
    return parameters.get_secret(secret_id, max_age=max_age, force_fetch=force_fetch)


class SecretCredentials:
    """Reads the secret through ``fetch`` (Powertools ``get_secret``) and parses it once per value.

    ``get()`` re-reads after ``max_age`` seconds; ``refresh()`` forces a read (key rotation).
    ``reads`` counts calls to ``fetch``.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        max_age: int = 300,
        fetch: Callable[..., str | bytes] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.secret_id = secret_id
        self.max_age = max_age
        self.reads = 0
        self._fetch = fetch or _powertools_fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._digest: bytes | None = None
        self._credentials: Credentials | None = None
        self._read_at = float("-inf")

    def get(self) -> Credentials:
        """The current credentials, from cache while younger than ``max_age``."""
        creds = self._credentials
        if creds is not None and self._clock() - self._read_at < self.max_age:
            return creds
        return self._load(force=False)

    def refresh(self) -> Credentials:
        """Force a re-read of the secret (Monetate refused the key: it may have been rotated)."""
        return self._load(force=True)

    def _load(self, *, force: bool) -> Credentials:
        with self._lock:
            if not force and self._credentials is not None and self._clock() - self._read_at < self.max_age:
                return self._credentials
            text = self._read(force)
            digest = hashlib.sha256(text if isinstance(text, bytes) else text.encode()).digest()
            if self._credentials is None or digest != self._digest:
                self._credentials = parse_secret(text)
                self._digest = digest
                logger.info("loaded Monetate credentials", extra={"secret_id": self.secret_id})
            self._read_at = self._clock()
            return self._credentials

    def _read(self, force: bool) -> str | bytes:
        self.reads += 1
        error: Exception | None = None
        try:
            value = self._fetch(self.secret_id, max_age=self.max_age, force_fetch=force)
        except Exception as exc:  # any provider failure; mapped below, outside the except block
            error = exc
        if error is not None:
            raise _secret_error(self.secret_id, error)
        if not isinstance(value, (str, bytes)):
            raise CredentialsError(
                f"secret {self.secret_id!r} did not return a string (got {type(value).__name__})"
            )
        return value


def _secret_error(secret_id: str, exc: BaseException) -> CredentialsError | TransientApiError:
    """Name the secret and the cause (class and AWS error code), never the message body."""
    code = _error_code(exc)
    cause = type(exc).__name__ + (f" ({code})" if code else "")
    if code is not None and any(marker in code for marker in _TRANSIENT_MARKERS):
        return TransientApiError(f"Secrets Manager is unavailable reading secret {secret_id!r}: {cause}")
    return CredentialsError(f"could not read secret {secret_id!r} from Secrets Manager: {cause}")


def _error_code(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    for _ in range(4):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = response.get("Error", {}).get("Code")
            if isinstance(code, str):
                return code
        name = type(seen).__name__
        if name.endswith(("Timeout", "TimeoutError", "ConnectionError", "ClosedError", "CredentialsError")):
            return name
        match = re.search(r"An error occurred \((\w+)\)", str(seen))
        if match:
            return match.group(1)
        seen = seen.__cause__ or seen.__context__
    return None
