"""Sign the short-lived JWT that Monetate's Auth API trades for an access token."""

from __future__ import annotations

import jwt

from monetate_ingest.monetate.credentials import Credentials


def sign_jwt(credentials: Credentials, now: float) -> str:
    """A JWT with claims ``username`` and ``iat`` (whole seconds), signed with the user's RSA key."""
    claims = {"username": credentials.username, "iat": int(now)}
    return jwt.encode(claims, credentials.private_key, algorithm=credentials.algorithm)
