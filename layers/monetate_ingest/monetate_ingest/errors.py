"""The project's exception hierarchy.

Every error a caller must act on is one of three kinds, read from the class attribute ``kind``:

* ``configuration`` - the deployment is wrong (settings, secret, key). Never retried; fix and redeploy.
* ``permanent``     - this request or these rows will never succeed as they are (400, 404, revoked key).
* ``transient``     - try again later (429, 5xx, timeouts, connection errors, a non-JSON proxy page).

Messages never contain key material, JWTs or tokens. The classes of each concern live in
its room: ``monetate.exceptions``, ``formats.exceptions``, ``delivery.exceptions``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal["configuration", "permanent", "transient"]


class MonetateIngestError(Exception):
    """Base of every error raised by this package."""

    kind: ClassVar[ErrorKind] = "permanent"

    @property
    def retryable(self) -> bool:
        return self.kind == "transient"


# --- configuration -------------------------------------------------------------------------


class ConfigurationError(MonetateIngestError):
    """A setting, the secret or the key is missing or malformed."""

    kind: ClassVar[ErrorKind] = "configuration"


class SettingsError(ConfigurationError):
    """An environment variable is missing or malformed; the message names it."""
