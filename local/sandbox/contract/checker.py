"""Each exchange held to the reference: what was sent, and what the sandbox answered.

Rules (README, "The contract checks"):

* A request must be one the reference allows: a path and method it defines, ``Token``/``JWT``
  authentication as its security scheme says, declared query parameters only (a ``next`` or
  ``previous`` URL the sandbox gave is followed as given), a body only where one is defined, JSON
  that matches the request schema, strict objects (:mod:`.strict`). Rows that break the
  dataset's field types are the one exception: the reference answers them with 400, and a client
  that posts a row its own checks could not know was bad (a stale schema) relies on that.
* An answer must be one the reference declares for the operation, in its envelope, with
  ``meta.code`` equal to the status. A request the reference does not allow must be refused:
  404 for an unknown path, 405 with ``Allow`` for an unknown method, 401 for missing or
  mis-schemed credentials, a declared 4xx otherwise; never a 2xx.
* Answers the fault injector produced are exempt; a sandbox bug (its catch-all 500) never is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request.exceptions import ParameterValidationError, SecurityValidationError
from openapi_schema_validator import OAS30Validator

from local.sandbox.exchanges import Exchange

from .documents import DATA_API, Documents, Served
from .wire import CoreRequest, CoreResponse

SCHEMES = {"Auth": "JWT", "Data": "Token", "Metadata": "Token"}
_DATA_PATH = re.compile(r"/data/([^/]+)/")
_JSON_TYPES = ("application/json", "application/*", "*/*")
MAX_MESSAGES = 5
Expect = Literal["operation", "unknown_path", "unknown_method"]
Link = tuple[str, str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Violation:
    """One way an exchange broke the reference."""

    side: Literal["request", "answer"]
    method: str
    path: str
    status: int
    message: str

    def __str__(self) -> str:
        where = f"{self.method} {self.path} → {self.status}"
        return f"{where}: the {self.side} breaks the reference: {self.message}"


@dataclass
class _Sent:
    """What the checker found about one request."""

    expect: Expect = "operation"
    problems: list[str] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    unauthenticated: bool = False
    allowed: tuple[str, ...] = ()
    served: Served | None = None


class ContractChecker:
    """Checks exchanges in the order they happened (``next`` links are remembered per sandbox)."""

    def __init__(self, documents: Documents | None = None) -> None:
        self.documents = documents or Documents()
        self._links: set[Link] = set()

    def check_all(
        self, exchanges: Iterable[Exchange], *, invalid_requests_expected: bool = False
    ) -> list[Violation]:
        """Every violation of ``exchanges``; request problems are not reported when the test sends
        invalid requests on purpose (their answers still must be the reference's refusals)."""
        found: list[Violation] = []
        for exchange in exchanges:
            found += self.check(exchange, invalid_requests_expected=invalid_requests_expected)
        return found

    def check(self, ex: Exchange, *, invalid_requests_expected: bool = False) -> list[Violation]:
        """The violations of one exchange."""
        if ex.origin == "fault":
            return []
        if ex.origin == "sandbox_error":
            return [
                Violation(
                    "answer",
                    ex.method,
                    ex.path,
                    ex.status,
                    f"the sandbox failed while answering: {_text(ex.answer_body)}",
                )
            ]
        sent = self._request(ex)
        out: list[Violation] = []
        if not invalid_requests_expected:
            out += [Violation("request", ex.method, ex.path, ex.status, m) for m in _capped(sent.problems)]
        answer = _capped(self._answer(ex, sent))
        out += [Violation("answer", ex.method, ex.path, ex.status, m) for m in answer]
        return out

    # --- requests ---------------------------------------------------------------------------

    def _request(self, ex: Exchange) -> _Sent:
        sent = _Sent()
        api = self.documents.api_for(ex.path, ex.retailer, ex.environment)
        if api is None:
            sent.expect = "unknown_path"
            sent.problems.append(f"no Monetate API of the reference lives at {ex.path}")
            return sent
        relative = ex.path[len(api.prefix.format(retailer=ex.retailer, environment=ex.environment)) :]
        match = _DATA_PATH.fullmatch(relative) if api.name == "Data" else None
        name = unquote(match.group(1)) if match else None
        sent.served = served = self.documents.served(
            api, ex.base_url, ex.retailer, ex.environment, name, ex.dataset if name else None
        )
        request = CoreRequest.of(ex)
        try:
            found = APICallPathFinder(served.spec.spec).find(request.method, ex.base_url + ex.path)
        except OperationNotFound:
            sent.expect = "unknown_method"
            sent.allowed = _methods(served, relative)
            only = ", ".join(sent.allowed)
            sent.problems.append(f"the reference defines no {ex.method} here (only {only})")
            return sent
        except PathError:
            sent.expect = "unknown_path"
            slash = "" if ex.path.endswith("/") or api.name == "Metadata" else " (its paths end with '/')"
            sent.problems.append(f"no such path in the {api.name} API reference{slash}")
            return sent
        operation = served.doc["paths"][found.path_result.pattern][request.method]
        self._authentication(ex, api.name, sent)
        self._query(ex, operation, served.doc["paths"][found.path_result.pattern], sent)
        self._body(ex, operation, sent)
        for error in served.spec.iter_request_errors(request):
            if isinstance(error, SecurityValidationError):
                continue  # _authentication says it better
            messages = _schema_messages(error)
            sent.rows += [m for p, m in messages if _is_row(p, ())]
            sent.problems += [m for p, m in messages if not _is_row(p, ())]
        return sent

    @staticmethod
    def _authentication(ex: Exchange, api: str, sent: _Sent) -> None:
        scheme, _, credential = (ex.header("Authorization") or "").partition(" ")
        if scheme != SCHEMES[api] or not credential.strip():
            sent.unauthenticated = True
            sent.problems.append(
                f"the {api} API needs 'Authorization: {SCHEMES[api]} <…>'"
                + (f", got scheme {scheme!r}" if scheme else ", got none")
            )

    def _query(self, ex: Exchange, operation: dict[str, Any], item: dict[str, Any], sent: _Sent) -> None:
        declared = {
            p.get("name")
            for p in [*item.get("parameters", []), *operation.get("parameters", [])]
            if _deref(p, sent).get("in") == "query"
        }
        names = [k for k, _ in ex.query]
        for name in sorted({n for n in names if names.count(n) > 1}):
            sent.problems.append(f"query parameter {name!r} is given {names.count(name)} times")
        if (ex.base_url, ex.path, tuple(sorted(ex.query))) in self._links:
            return  # a next/previous URL the sandbox gave: followed as given
        extra = sorted({n for n in names if n not in declared})
        if extra:
            allowed = ", ".join(sorted(n for n in declared if n)) or "none"
            sent.problems.append(f"undeclared query parameter(s) {', '.join(extra)} (declared: {allowed})")

    @staticmethod
    def _body(ex: Exchange, operation: dict[str, Any], sent: _Sent) -> None:
        accept = ex.header("Accept")
        if accept is not None and not any(t in accept.lower() for t in _JSON_TYPES):
            sent.problems.append(f"Accept {accept!r} refuses the reference's application/json answers")
        if not ex.body:
            return
        if "requestBody" not in operation:
            sent.problems.append(f"a {ex.method} here has no body in the reference, got {len(ex.body)} bytes")
            return
        try:
            json.loads(ex.body, parse_constant=_not_json)
        except (ValueError, UnicodeDecodeError) as exc:
            sent.problems.append(f"the body is not JSON: {exc}")

    # --- answers ----------------------------------------------------------------------------

    def _answer(self, ex: Exchange, sent: _Sent) -> list[str]:
        problems = _envelope(ex)
        if sent.expect == "unknown_path":
            if ex.status != 404:
                problems.append(f"a path the reference does not define must be 404, got {ex.status}")
            return problems + self._refusal_body(ex, sent)
        if sent.expect == "unknown_method":
            allow = {m.strip().upper() for m in (ex.answer_header("Allow") or "").split(",") if m.strip()}
            if ex.status != 405:
                problems.append(f"a method the reference does not define must be 405, got {ex.status}")
            elif allow != set(sent.allowed):
                wanted = ", ".join(sent.allowed)
                problems.append(f"405 must say Allow: {wanted}; got {sorted(allow) or 'none'}")
            return problems + self._refusal_body(ex, sent)
        ok = 200 <= ex.status < 300
        if ok and sent.problems:
            first = sent.problems[0]
            problems.append(f"the sandbox accepted a request the reference does not allow ({first})")
        elif ok and sent.rows and ex.rows_checked:
            problems.append(f"the sandbox accepted rows that break the dataset's schema ({sent.rows[0]})")
        if sent.unauthenticated and ex.status != 401:
            problems.append(f"a request without valid credentials must be 401, got {ex.status}")
        assert sent.served is not None
        for error in sent.served.spec.iter_response_errors(CoreRequest.of(ex), CoreResponse.of(ex)):
            messages = _schema_messages(error)
            problems += [m for p, m in messages if ex.rows_checked or not _is_row(p, ("data",))]
        if ok:
            self._remember_links(ex)
        return problems

    def _refusal_body(self, ex: Exchange, sent: _Sent) -> list[str]:
        served = sent.served or self.documents.served(DATA_API, ex.base_url, ex.retailer, ex.environment)
        root = {"$ref": "#/components/schemas/Response", "components": served.doc["components"]}
        try:
            body = json.loads(ex.answer_body)
        except ValueError:
            return []  # _envelope said so
        errors = OAS30Validator(root).iter_errors(body)
        return [f"{_where(e.absolute_path)}: {_short(e.message)}" for e in errors]

    def _remember_links(self, ex: Exchange) -> None:
        try:
            meta = json.loads(ex.answer_body).get("meta")
        except (ValueError, AttributeError):
            return
        for key in ("next", "previous"):
            link = meta.get(key) if isinstance(meta, dict) else None
            if isinstance(link, str) and link:
                parts = urlsplit(link)
                base = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ex.base_url
                query = tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))
                self._links.add((base, parts.path, query))


def _envelope(ex: Exchange) -> list[str]:
    kind = (ex.answer_header("Content-Type") or "").lower()
    if "application/json" not in kind:
        return [f"answers are application/json in the reference, got {kind or 'no Content-Type'}"]
    try:
        body = json.loads(ex.answer_body, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"the answer is not JSON: {exc}"]
    meta = body.get("meta") if isinstance(body, dict) else None
    if isinstance(meta, dict) and meta.get("code") != ex.status:
        return [f"meta.code is {meta.get('code')!r}, the HTTP status {ex.status}"]
    return []


def _schema_messages(error: Exception) -> list[tuple[tuple[Any, ...], str]]:
    """``(body path, message)`` pairs of an openapi-core error (one per JSON-schema error)."""
    cause = error.__cause__
    schema_errors = list(getattr(cause, "schema_errors", None) or [])
    if isinstance(error, ParameterValidationError):
        what = f"{error.location} parameter {error.name!r}"
        details = "; ".join(_short(e.message) for e in schema_errors) or _short(str(cause or error))
        return [((), f"{what}: {details}")]
    if not schema_errors:
        return [((), _short(str(error)))]
    return [
        (tuple(e.absolute_path), f"{_where(e.absolute_path)}: {_short(e.message)}") for e in schema_errors
    ]


def _is_row(path: tuple[Any, ...], under: tuple[str, ...]) -> bool:
    """True when ``path`` points into one row: ``[*under, "schema_rows", <index>, ...]``."""
    rest = path[len(under) :] if path[: len(under)] == under else ()
    return len(rest) >= 2 and rest[0] == "schema_rows" and isinstance(rest[1], int)


def _methods(served: Served, relative: str) -> tuple[str, ...]:
    for template, item in served.doc["paths"].items():
        if re.fullmatch(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)), relative):
            return tuple(sorted(m.upper() for m in item if m != "parameters"))
    return ()


def _deref(parameter: dict[str, Any], sent: _Sent) -> dict[str, Any]:
    ref = parameter.get("$ref")
    if isinstance(ref, str) and sent.served is not None:
        found: dict[str, Any] = sent.served.doc["components"]["parameters"][ref.rsplit("/", 1)[1]]
        return found
    return parameter


def _where(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "body"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _text(body: bytes) -> str:
    return _short(body.decode("utf-8", "replace"))


def _capped(messages: list[str]) -> list[str]:
    messages = list(dict.fromkeys(messages))
    if len(messages) <= MAX_MESSAGES:
        return messages
    return [*messages[:MAX_MESSAGES], f"(and {len(messages) - MAX_MESSAGES} more)"]


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")
