"""The HTTP layer: a keep-alive ThreadingHTTPServer tuned not to be a benchmark's bottleneck."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import exchanges
from .api import Api, Request
from .requestlog import LoggedRequest, RequestLog
from .responses import Answer, error

MAX_BODY = 64 * 1024 * 1024


class SandboxHTTPServer(ThreadingHTTPServer):
    """Threaded server: TCP_NODELAY, deep listen backlog, daemon threads, closable connections."""

    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], api: Api, log: RequestLog, monotonic: Callable[[], float]
    ) -> None:
        self.api, self.log, self.monotonic = api, log, monotonic
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, SandboxHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(conn)
        return conn, addr

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that hung up; report anything else."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Cut every kept-alive connection so its handler thread ends."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SandboxHandler(BaseHTTPRequestHandler):
    """Reads a request, asks the Api, writes headers and body in one write, logs it."""

    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer

    def _serve(self) -> None:
        server = self.server
        started = server.monotonic()
        parts = urlsplit(self.path)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = dict(pairs)
        body, problem = self._read_body()
        if problem is not None:
            answer = problem
        else:
            names = [k for k, _ in pairs]
            request = Request(
                self.command,
                parts.path,
                query,
                self.headers.get("Authorization"),
                body,
                started,
                f"http://127.0.0.1:{server.server_address[1]}",
                tuple(sorted({k for k in names if names.count(k) > 1})),
            )
            try:
                answer = server.api.handle(request)
            except Exception as exc:  # a sandbox bug must still answer in the envelope
                answer = error(500, f"sandbox error: {type(exc).__name__}")
                answer.origin = "sandbox_error"
        # Logged before the answer goes out, so a client that has its answer finds it in the log.
        server.log.append(
            LoggedRequest(
                self.command, parts.path, query, answer.status, started, server.monotonic(), answer.username
            )
        )
        if exchanges.active():
            self._publish(parts.path, pairs, body, answer)
        self.wfile.write(answer.encode(close=self.close_connection))

    def _publish(self, path: str, pairs: list[tuple[str, str]], body: bytes, answer: Answer) -> None:
        api = self.server.api
        headers = tuple(
            (k, exchanges.redact_authorization(v) if k.lower() == "authorization" else v)
            for k, v in self.headers.items()
        )
        exchanges.publish(
            exchanges.Exchange(
                base_url=f"http://127.0.0.1:{self.server.server_address[1]}",
                retailer=api.retailer,
                environment=api.environment,
                method=self.command,
                path=path,
                query=tuple(pairs),
                headers=headers,
                body=body,
                status=answer.status,
                answer_headers=tuple(answer.header_items()),
                answer_body=answer.body if answer.recorded_body is None else answer.recorded_body,
                origin=answer.origin,
                dataset=api.dataset_for(path),
                rows_checked=api.validate_rows,
            )
        )

    def _read_body(self) -> tuple[bytes, Answer | None]:
        raw = self.headers.get("Content-Length")
        if raw is None:
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                return b"", error(400, "chunked bodies are not supported; send Content-Length")
            return b"", None
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            return b"", error(400, "invalid Content-Length")
        return self.rfile.read(length), None

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the RequestLog is the log."""


def serve_in_thread(server: SandboxHTTPServer) -> threading.Thread:
    """Run ``server.serve_forever`` on a daemon thread."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="monetate-sandbox", daemon=True
    )
    thread.start()
    return thread
