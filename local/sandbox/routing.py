"""Which endpoint a path names, its methods, and the query parameters each method declares."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

AUTH_PATH = "/api/auth/v0/refresh/"
DATA_PREFIX = "/api/data/v1/"
#: The list endpoints' page cursor: only ever sent back in a ``meta.next``/``previous`` link.
PAGE = "page"

#: Query parameters the reference declares, by (route kind, method).
QUERY: dict[tuple[str, str], tuple[str, ...]] = {
    ("auth", "GET"): ("ttl",),
    ("schemas", "GET"): ("row_count", "latest_upload", "usable_in_accounts", PAGE),
    ("schema", "GET"): ("row_count", "latest_upload"),
    ("schematypes", "GET"): (PAGE,),
    ("upload", "GET"): (PAGE,),
    ("data", "GET"): ("id",),
}
BOOLEAN_QUERY = ("row_count", "latest_upload", "usable_in_accounts")


@dataclass(frozen=True)
class Route:
    """An endpoint: ``kind`` (auth, schemas, schema, schematypes, schematype, upload, data), the
    percent-decoded name in its path (schema or schema type), and the methods it answers."""

    kind: str
    name: str | None
    methods: tuple[str, ...]

    def query(self, method: str) -> tuple[str, ...]:
        """The query parameters ``method`` may carry here."""
        return QUERY.get((self.kind, method), ())


def route(path: str, retailer: str, environment: str) -> Route | None:
    """The endpoint ``path`` names, or None (404)."""
    if path == AUTH_PATH:
        return Route("auth", None, ("GET",))
    if not path.startswith(DATA_PREFIX) or not path.endswith("/"):
        return None
    parts = [unquote(p) for p in path[len(DATA_PREFIX) : -1].split("/")]
    if len(parts) < 3 or "" in parts or parts[:2] != [retailer, environment]:
        return None
    rest = parts[2:]
    if len(rest) == 1:
        return {
            "schema": Route("schemas", None, ("GET", "POST")),
            "schematype": Route("schematypes", None, ("GET",)),
        }.get(rest[0])
    if len(rest) == 2:
        methods = {
            "schema": ("GET", "PATCH"),
            "schematype": ("GET",),
            "upload": ("GET",),
            "data": ("GET", "POST"),
        }.get(rest[0])
        return Route(rest[0], rest[1], methods) if methods else None
    return None
