"""Shared fixtures: key pairs and secrets (generated once per session), and a scripted HTTP
transport so unit tests exercise real ``requests`` sessions without sockets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from requests import PreparedRequest, Response
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

pytest_plugins = ["tests.fixtures_sandbox", "pytester"]


@dataclass(frozen=True)
class KeyPair:
    """An RSA key pair in every form the tests need."""

    private_key: rsa.RSAPrivateKey
    pkcs8_pem: str
    pkcs1_pem: str
    public_pem: str

    @property
    def body_lines(self) -> list[str]:
        """The base64 lines of both private PEMs: none may ever appear in output or messages."""
        lines: list[str] = []
        for pem in (self.pkcs8_pem, self.pkcs1_pem):
            lines += [line for line in pem.splitlines() if line and not line.startswith("-----")]
        return lines


def _pair(private_key: rsa.RSAPrivateKey) -> KeyPair:
    def pem(fmt: serialization.PrivateFormat) -> str:
        return private_key.private_bytes(
            serialization.Encoding.PEM, fmt, serialization.NoEncryption()
        ).decode()

    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(
        private_key=private_key,
        pkcs8_pem=pem(serialization.PrivateFormat.PKCS8),
        pkcs1_pem=pem(serialization.PrivateFormat.TraditionalOpenSSL),
        public_pem=public.decode(),
    )


@pytest.fixture(scope="session")
def key_pair() -> KeyPair:
    """The API user's RSA key pair."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def other_key_pair() -> KeyPair:
    """A second RSA key pair (rotation)."""
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_private_pem() -> str:
    """A valid PKCS#8 private key that is not RSA."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture(scope="session")
def make_secret(key_pair: KeyPair) -> Callable[..., str]:
    """``make_secret(username=..., pem=..., algorithm=...)`` → the secret's JSON text."""

    def make(username: str = "api-123-example", pem: str | None = None, algorithm: str | None = None) -> str:
        value = {"username": username, "private_key": pem if pem is not None else key_pair.pkcs8_pem}
        if algorithm is not None:
            value["algorithm"] = algorithm
        return json.dumps(value)

    return make


@pytest.fixture(scope="session")
def secret_text(make_secret: Callable[..., str]) -> str:
    """A well-formed secret for ``api-123-example`` with the session key (RS256)."""
    return make_secret()


# --- a scripted HTTP transport (no sockets) ---------------------------------------------------

Reply = tuple[int, object, dict[str, str]] | Exception
"""``(status, body, headers)``; a dict/list body is sent as JSON, bytes/str as is; or raise."""


class FakeTransport(BaseAdapter):
    """A ``requests`` adapter answering from ``handler(request) -> Reply``; records what was sent."""

    def __init__(self, handler: Callable[[PreparedRequest], Reply]) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[PreparedRequest] = []
        self.kwargs: list[dict[str, object]] = []
        self._lock = threading.Lock()

    def send(self, request: PreparedRequest, **kwargs: object) -> Response:  # type: ignore[override]
        with self._lock:
            self.sent.append(request.copy())
            self.kwargs.append(kwargs)
        reply = self.handler(request)
        if isinstance(reply, Exception):
            raise reply
        status, body, headers = reply
        response = Response()
        response.status_code = status
        response.reason = "OK" if status < 400 else "Error"
        if isinstance(body, (dict, list)):
            response._content = json.dumps(body).encode()
            response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
        else:
            response._content = body.encode() if isinstance(body, str) else bytes(body)  # type: ignore[call-overload]
            response.headers = CaseInsensitiveDict(headers)
        response._content_consumed = True  # type: ignore[attr-defined]
        response.encoding = "utf-8"
        response.url = str(request.url)
        response.request = request
        response.connection = self  # type: ignore[assignment]
        return response

    def close(self) -> None:
        pass


@pytest.fixture
def fake_http() -> Callable[[Callable[[PreparedRequest], Reply]], tuple[requests.Session, FakeTransport]]:
    """``session, transport = fake_http(handler)``: a Session whose every URL goes to the fake."""

    def make(handler: Callable[[PreparedRequest], Reply]) -> tuple[requests.Session, FakeTransport]:
        session = requests.Session()
        session.trust_env = False
        transport = FakeTransport(handler)
        session.mount("http://", transport)
        session.mount("https://", transport)
        return session, transport

    return make
