"""The operator CLI: ``python -m monetate_ingest`` / ``monetate-ingest`` (see ``--help``).

Commands live in their own modules (``check``, ``schema_cmd``, ``push``, ``ops``, ``sync_cmd``) and
are imported only when they run; importing this package loads neither boto3 nor requests.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from monetate_ingest.cli.args import PROG, build_parser
from monetate_ingest.cli.common import CliError, Context, one_line
from monetate_ingest.errors import MonetateIngestError

__all__ = ["CliError", "Context", "build_parser", "main"]

EXIT_OK, EXIT_UNEXPECTED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    inp: TextIO | None = None,
) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return the exit status.

    ``inp`` is where a confirmation is read (default stdin)."""
    out = out or sys.stdout
    err = err or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse printed the usage and the error (or the help)
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_ERROR
    ctx = Context(args=args, out=out, err=err, inp=inp)
    module_name, _, function_name = str(args.target).partition(":")
    with _logging(verbose=bool(args.verbose), stream=err):
        try:
            command: Callable[[Context], int] = getattr(importlib.import_module(module_name), function_name)
            return command(ctx)
        except CliError as exc:
            _error(err, str(exc))
            return exc.code
        except MonetateIngestError as exc:
            _error(err, str(exc))
            return EXIT_ERROR
        except KeyboardInterrupt:
            _error(err, "interrupted")
            return EXIT_INTERRUPTED
        except Exception as exc:
            if _is_aws_error(exc):
                _error(err, f"AWS: {exc}")
                return EXIT_ERROR
            if args.verbose:
                traceback.print_exc(file=err)
            _error(err, f"unexpected {type(exc).__name__}: {exc} (run with --verbose for the traceback)")
            return EXIT_UNEXPECTED


def _error(err: TextIO, message: str) -> None:
    print(f"{PROG}: error: {one_line(message)}", file=err)


def _is_aws_error(exc: BaseException) -> bool:
    """botocore's errors (no credentials, unknown profile, access denied, ...) are the user's to fix."""
    return any(cls.__module__.startswith(("botocore.", "boto3.")) for cls in type(exc).__mro__)


@contextmanager
def _logging(*, verbose: bool, stream: TextIO) -> Iterator[None]:
    """The package's Powertools logger: warnings only (INFO with --verbose), to stderr; restored after."""
    from monetate_ingest.observability import logger

    handler = logger.registered_handler
    saved_level = logger.log_level
    saved_stream = handler.stream if isinstance(handler, logging.StreamHandler) else None
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    if isinstance(handler, logging.StreamHandler):
        _swap_stream(handler, stream)
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        if isinstance(handler, logging.StreamHandler) and saved_stream is not None:
            _swap_stream(handler, saved_stream)


def _swap_stream(handler: logging.StreamHandler[TextIO], stream: TextIO) -> None:
    """Like ``setStream`` without flushing the old stream (it may be closed, as under pytest)."""
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()
