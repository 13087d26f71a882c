"""An exchange as openapi-core's request and response protocols see it."""

from __future__ import annotations

from dataclasses import dataclass, field

from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from local.sandbox.exchanges import Exchange


@dataclass
class CoreRequest:
    """openapi-core's ``Request`` protocol over an :class:`Exchange`'s request."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters = field(default_factory=RequestParameters)

    @classmethod
    def of(cls, exchange: Exchange) -> CoreRequest:
        return cls(
            host_url=exchange.base_url,
            path=exchange.path,
            method=exchange.method.lower(),
            body=exchange.body or None,
            content_type=(exchange.header("Content-Type") or "").lower(),
            parameters=RequestParameters(
                query=ImmutableMultiDict(list(exchange.query)),
                header=Headers(list(exchange.headers)),
                cookie=ImmutableMultiDict(),
            ),
        )


@dataclass
class CoreResponse:
    """openapi-core's ``Response`` protocol over an :class:`Exchange`'s answer."""

    status_code: int
    data: bytes | None
    content_type: str
    headers: Headers

    @classmethod
    def of(cls, exchange: Exchange) -> CoreResponse:
        return cls(
            status_code=exchange.status,
            data=exchange.answer_body or None,
            content_type=(exchange.answer_header("Content-Type") or "").lower(),
            headers=Headers(list(exchange.answer_headers)),
        )
