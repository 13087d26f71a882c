"""List answers in pages, as the reference's ResponsePagination describes them.

``meta.count`` is "the number of items returned in this response"; ``meta.next`` and
``meta.previous`` are "a URL to the next (previous) group of items, if any": absolute URLs,
present only when there is such a group (the reference types them as strings, never null). The
reference states no page size for the Data API; the Metadata API's default of 10 is the only one
it names, so the sandbox uses it (``MonetateSandbox(page_size=...)`` to change it).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from .routing import PAGE
from .rules import RuleError

DEFAULT_PAGE_SIZE = 10


def page_of(
    items: list[Any], query: dict[str, str], *, url: str, size: int
) -> tuple[list[Any], dict[str, Any]]:
    """The page ``query`` asks for (``page``, from 1) and its meta; RuleError for a page that
    does not exist."""
    raw = query.get(PAGE, "1")
    last = max(1, -(-len(items) // size))
    number = int(raw) if raw.isdigit() else 0
    if not 1 <= number <= last:
        raise RuleError([{"field": PAGE, "message": f"no page {raw!r}: pages run from 1 to {last}"}])
    start = (number - 1) * size
    chunk = items[start : start + size]
    meta: dict[str, Any] = {"count": len(chunk)}
    kept = [(k, v) for k, v in query.items() if k != PAGE]
    if number < last:
        meta["next"] = f"{url}?{urlencode([*kept, (PAGE, str(number + 1))])}"
    if number > 1:
        meta["previous"] = f"{url}?{urlencode([*kept, (PAGE, str(number - 1))])}"
    return chunk, meta
