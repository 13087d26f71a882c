"""``python -m local.sandbox --port 8080 --retailer acme [--register-key USER:PEM_PATH]``."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import threading
from pathlib import Path

from .sandbox import MonetateSandbox


def _key(value: str) -> tuple[str, str]:
    username, sep, path = value.partition(":")
    if not sep or not username or not path:
        raise argparse.ArgumentTypeError("expected USERNAME:PUBLIC_PEM_PATH")
    return username, path


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m local.sandbox", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--retailer", default="acme")
    parser.add_argument("--environment", default="production")
    parser.add_argument(
        "--register-key",
        type=_key,
        action="append",
        default=[],
        metavar="USERNAME:PUBLIC_PEM_PATH",
        help="register an API user's public key",
    )
    parser.add_argument(
        "--schema",
        action="append",
        default=[],
        metavar="JSON_PATH",
        help="create a schema from a JSON file (a POST /schema/ body)",
    )
    parser.add_argument("--no-validate-rows", action="store_true", help="skip row type checks")
    args = parser.parse_args(argv)
    sandbox = MonetateSandbox(
        args.retailer, args.environment, port=args.port, validate_rows=not args.no_validate_rows
    )
    for username, path in args.register_key:
        sandbox.register_key(username, Path(path).read_bytes())
    for path in args.schema:
        sandbox.add_schema(json.loads(Path(path).read_text()))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sandbox:
        print(sandbox.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
