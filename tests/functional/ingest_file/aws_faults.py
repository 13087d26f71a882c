"""A fake for boto3 clients: one operation answers a botocore ``ClientError`` while switched on.

``FailingClient(client, "put_object", when=lambda kw: kw["Key"] == key)`` forwards every call to
the real (moto) client, except that operation's calls matching ``when`` while ``on`` is True: those
raise the error AWS would send, without reaching moto. ``calls`` counts the failed calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError


class FailingClient:
    """See the module docstring; ``after`` lets that many matching calls through first."""

    def __init__(
        self,
        client: Any,
        operation: str,
        *,
        code: str = "InternalError",
        message: str = "We encountered an internal error. Please try again.",
        when: Callable[[dict[str, Any]], bool] = lambda kwargs: True,
        after: int = 0,
    ) -> None:
        self._client = client
        self.operation = operation
        self.code, self.message, self.when = code, message, when
        self.after = after
        self.on = True
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name != self.operation:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.on and self.when(kwargs):
                if self.after > 0:
                    self.after -= 1
                else:
                    self.calls += 1
                    error = {"Error": {"Code": self.code, "Message": self.message}}
                    raise ClientError(error, self.operation)  # type: ignore[arg-type]
            return attr(*args, **kwargs)

        return call


class LoopbackLambda:
    """A Lambda client whose ``invoke`` hands the payload to ``sink`` (the stack's continuations)."""

    def __init__(self, sink: Callable[[dict[str, Any]], None]) -> None:
        self.sink = sink

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        self.sink(json.loads(Payload))
        return {"StatusCode": 202}
