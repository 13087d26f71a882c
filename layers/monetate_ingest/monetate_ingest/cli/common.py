"""What every command shares: the boto3 session, settings with flag overrides, the Monetate client,
and plain-text tables. boto3 and requests are imported only when a command asks for them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from monetate_ingest.errors import SettingsError

if TYPE_CHECKING:
    from monetate_ingest.monetate.client import MonetateClient
    from monetate_ingest.settings import IngestSettings

#: Flags that override an environment variable, and the message when neither is given.
OVERRIDES = {
    "retailer": ("MONETATE_RETAILER", "--retailer"),
    "secret_id": ("MONETATE_SECRET_ID", "--secret-id"),
    "api_url": ("MONETATE_API_URL", "--api-url"),
}


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Context:
    """One command run: parsed arguments, output streams, the input and the environment."""

    args: argparse.Namespace
    out: TextIO
    err: TextIO
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    inp: TextIO | None = None  # where answers are read (default stdin)
    _session: Any = None

    def print(self, text: str = "") -> None:
        print(text, file=self.out)

    def confirm(self, question: str) -> bool:
        """Ask ``question [y/N]`` on stderr; True only for an answer of y or yes (end of input: no)."""
        print(f"{question} [y/N] ", end="", file=self.err, flush=True)
        answer = (self.inp or sys.stdin).readline()
        if not answer.endswith("\n"):
            print(file=self.err)
        return answer.strip().lower() in ("y", "yes")

    # -- AWS -------------------------------------------------------------------------------------

    def session(self) -> Any:
        """A ``boto3.Session`` for ``--profile``/``--region`` (else boto3's own resolution)."""
        if self._session is None:
            import boto3

            self._session = boto3.Session(
                profile_name=getattr(self.args, "profile", None),
                region_name=getattr(self.args, "region", None),
            )
        return self._session

    def aws(self, service: str) -> Any:
        return self.session().client(service)

    def secrets_fetch(self, secret_id: str, *, max_age: int = 0, force_fetch: bool = False) -> str | bytes:
        """Read the secret with this session (what Powertools' ``get_secret`` does in Lambda)."""
        answer = self.aws("secretsmanager").get_secret_value(SecretId=secret_id)
        if "SecretString" in answer:
            return str(answer["SecretString"])
        return bytes(answer["SecretBinary"])

    def env(self, name: str, flag_value: str | None, flag: str) -> str:
        """A value from its flag or environment variable, or a :class:`CliError` naming both."""
        value = flag_value or self.environ.get(name, "").strip()
        if not value:
            raise CliError(f"set {name} or pass {flag}")
        return value

    # -- Monetate --------------------------------------------------------------------------------

    def settings(self, extra: Mapping[str, str] | None = None) -> IngestSettings:
        """:class:`IngestSettings` from the environment with ``--retailer/--secret-id/--api-url`` and
        the command's ``extra`` variables applied."""
        from monetate_ingest.settings import IngestSettings

        environ = {**self.environ, **(extra or {})}
        given: dict[str, str] = {}
        for attr, (var, flag) in OVERRIDES.items():
            value = getattr(self.args, attr, None)
            if value is not None:
                environ[var] = value
                given[var] = flag
        try:
            return IngestSettings.from_env(environ)
        except SettingsError as exc:
            raise CliError(_settings_message(str(exc), given)) from None

    def client(self, settings: IngestSettings) -> MonetateClient:
        from monetate_ingest.monetate.factory import build_client

        return build_client(
            settings.monetate,
            pool_size=max(16, 2 * settings.post_concurrency),
            secrets_fetch=self.secrets_fetch,
        )


def _settings_message(message: str, given: Mapping[str, str]) -> str:
    for var, flag in OVERRIDES.values():
        if message.startswith(f"{var} is required"):
            return f"set {var} or pass {flag}"
        if var in given and message.startswith(f"{var}="):
            return f"{given[var]} " + message[len(var) + 1 :]
    return message


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> str:
    """Left-aligned columns separated by two spaces."""
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is True:
        return "yes"
    if value is False or value is None:
        return ""
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def one_line(text: object) -> str:
    """Collapse whitespace so an error prints as a single line."""
    return " ".join(str(text).split())
