"""A local API Gateway (REST API, Lambda proxy integration) in front of a handler, on loopback.

``ApiFront(handler, api_key)`` serves ``http://127.0.0.1:PORT/{stage}/…`` and does what API Gateway
does for ValidateRecord's two resources, ``/`` and ``/records/{schema}/{id}``:

* matches the resource template (raw path segments; path parameters are URL-decoded), answering
  ``403 {"message": "Missing Authentication Token"}`` for anything else, like API Gateway;
* requires the ``x-api-key`` header on ``/records/…`` (``403 {"message": "Forbidden"}`` without the
  right key); ``/`` (the page) is open, as in template.yaml;
* builds a REST proxy event (``resource``, ``path``, ``httpMethod``, ``headers``,
  ``multiValueHeaders``, query parameters, ``pathParameters``, ``requestContext`` with ``stage``,
  ``requestId``, ``identity.sourceIp``, ``identity.apiKey`` / ``apiKeyId``; ``body``,
  ``isBase64Encoded``) and a minimal Lambda context, calls the handler, and turns its
  ``statusCode`` / ``headers`` / ``multiValueHeaders`` / ``body`` (base64 when flagged) into the
  HTTP response; a handler exception or malformed result is a ``502 Internal server error``.

Not emulated: throttling (1 rps, burst 1 in AWS) and the function's reserved concurrency — the
handler runs on as many threads as there are concurrent requests, which is harsher on the pacer.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.lambda_context import FakeLambdaContext

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

#: Resource templates of the REST API, and whether they require the API key (template.yaml).
ROUTES: tuple[tuple[str, bool], ...] = (("/", False), ("/records/{schema}/{id}", True))
ACCOUNT = "123456789012"
REGION = "us-east-1"
API_ID = "local"
API_KEY_ID = "local-api-key"


def match_route(path: str) -> tuple[str, dict[str, str], bool] | None:
    """``(resource, pathParameters, needs_key)`` for a stage-relative raw path, or ``None``."""
    segments = path.split("/")[1:]
    for template, needs_key in ROUTES:
        parts = template.split("/")[1:]
        if template == "/":
            if path == "/":
                return template, {}, needs_key
            continue
        if len(parts) != len(segments):
            continue
        params: dict[str, str] = {}
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                if not segment:
                    break
                params[part[1:-1]] = unquote(segment)
            elif part != segment:
                break
        else:
            return template, params, needs_key
    return None


def build_event(
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    resource: str,
    path_parameters: dict[str, str],
    stage: str,
    source_ip: str,
    api_key: str | None,
    host: str,
) -> dict[str, Any]:
    """An API Gateway REST API proxy event, shaped like ``events/api_gateway_get_record.json``."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    pairs = parse_qsl(query, keep_blank_values=True)
    qs_single = {k: v for k, v in pairs} or None
    qs_multi: dict[str, list[str]] = {}
    for k, v in pairs:
        qs_multi.setdefault(k, []).append(v)
    text: str | None
    encoded = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
    now = time.time()
    user_agent = single.get("User-Agent") or single.get("user-agent")
    return {
        "resource": resource,
        "path": unquote(raw_path),
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": qs_single,
        "multiValueQueryStringParameters": qs_multi or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, resource).hex[:6],
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode("ascii"),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{raw_path}",
            "accountId": ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": API_ID,
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "apiKey": api_key,
                "apiKeyId": API_KEY_ID if api_key else None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": user_agent,
                "user": None,
                "accessKey": None,
                "clientCert": None,
            },
            "domainName": host,
            "deploymentId": "local",
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 stalls bursts of clients for a second
    front: ApiFront

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle + delayed-ACK stalls
        return conn, addr


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: no access log (headers hold keys)
        pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        front = self.server.front
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        target = urlsplit(self.path)
        prefix = f"/{front.stage}"
        raw = target.path
        if raw != prefix and not raw.startswith(prefix + "/"):
            self._send(403, {"message": "Missing Authentication Token"})
            return
        stage_path = raw[len(prefix) :] or "/"
        route = match_route(stage_path)
        if route is None or self.command != "GET":
            self._send(403, {"message": "Missing Authentication Token"})
            return
        resource, params, needs_key = route
        sent_key = self.headers.get("x-api-key")
        if (
            needs_key
            and front.api_key is not None
            and not (sent_key is not None and hmac.compare_digest(sent_key.encode(), front.api_key.encode()))
        ):
            self._send(403, {"message": "Forbidden"})
            return
        event = build_event(
            method=self.command,
            raw_path=stage_path,
            query=target.query,
            headers=list(self.headers.items()),
            body=body,
            resource=resource,
            path_parameters=params,
            stage=front.stage,
            source_ip=self.client_address[0],
            api_key=sent_key if needs_key else None,
            host=self.headers.get("Host") or f"127.0.0.1:{self.server.server_address[1]}",
        )
        try:
            result = front.handler(
                event, FakeLambdaContext(front.function_name, timeout_seconds=10.0, memory_limit_in_mb=256)
            )
            status, headers, payload = _decode_result(result)
        except Exception:  # what API Gateway answers when the function fails
            self._send(502, {"message": "Internal server error"})
            return
        front.count(status)
        self._send_raw(status, headers, payload)

    def _send(self, status: int, body: dict[str, Any]) -> None:
        self.server.front.count(status)
        self._send_raw(status, [("Content-Type", "application/json")], json.dumps(body).encode())

    def _send_raw(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _decode_result(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """The proxy integration's response: ``statusCode``, ``headers``/``multiValueHeaders``, ``body``."""
    if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
        raise ValueError("malformed Lambda proxy response")
    headers: dict[str, list[str]] = {}
    for name, value in (result.get("headers") or {}).items():
        headers[name] = [str(value)]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = [str(v) for v in values]  # multiValueHeaders win, as in API Gateway
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        try:
            payload = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise ValueError("body is not valid base64") from exc
    else:
        payload = str(body).encode("utf-8")
    return int(result["statusCode"]), [(k, v) for k, vs in headers.items() for v in vs], payload


class ApiFront:
    """API Gateway on ``127.0.0.1:port`` (0 → free) in front of ``handler``; a context manager."""

    def __init__(
        self,
        handler: Handler,
        api_key: str | None,
        stage: str = "v1",
        *,
        port: int = 0,
        function_name: str = "ValidateRecord",
    ) -> None:
        self.handler = handler
        self.api_key = api_key
        self.stage = stage
        self.function_name = function_name
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.statuses: list[int] = []

    def count(self, status: int) -> None:
        with self._lock:
            self.statuses.append(status)

    @property
    def url(self) -> str:
        """The stage's base URL, ``http://127.0.0.1:PORT/{stage}/`` (the page lives here)."""
        if self._server is None:
            raise RuntimeError("the API front is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/{self.stage}/"

    def start(self) -> ApiFront:
        if self._server is None:
            server = _Server(("127.0.0.1", self._port), _RequestHandler)
            server.front = self
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, name="api-front", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ApiFront:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main() -> None:  # pragma: no cover - manual use
    """``python -m local.api_front``: the real handler behind the front, env from the shell."""
    import argparse

    from functions.validate_record.app import lambda_handler

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="required x-api-key value (default: none)")
    args = parser.parse_args()
    with ApiFront(lambda_handler, args.api_key, port=args.port) as front:
        print(f"spot-check page: {front.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":  # pragma: no cover
    main()
