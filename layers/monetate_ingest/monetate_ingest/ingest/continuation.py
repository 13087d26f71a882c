"""Continuing a file in a fresh invocation before the Lambda deadline."""

from __future__ import annotations

import json
from typing import Any, Protocol


class Continuer(Protocol):
    def __call__(self, payload: dict[str, Any]) -> None: ...


class LambdaContinuer:
    """Invokes this same function asynchronously (``InvocationType=Event``) with the payload.

    The asynchronous invocation gets Lambda's own retries and the on-failure destination, so a
    continuation is as durable as the S3 event that started the file.
    """

    def __init__(self, function_arn: str, client: Any = None) -> None:
        self.function_arn = function_arn
        self._client = client

    def __call__(self, payload: dict[str, Any]) -> None:
        if self._client is None:
            import boto3

            self._client = boto3.client("lambda")
        self._client.invoke(
            FunctionName=self.function_arn,
            InvocationType="Event",
            Payload=json.dumps(payload).encode(),
        )
