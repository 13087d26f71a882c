"""The spot-check page: one self-contained HTML file (package data) and its Content-Security-Policy.

The CSP allows exactly the page's inline script and style, by their SHA-256 hashes, computed once
per container; nothing else may load, and the page may only call its own origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from monetate_ingest.errors import ConfigurationError

PAGE_RESOURCE = "page.html"


@dataclass(frozen=True)
class Page:
    html: str
    csp: str


def _sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def _inline(tag: str, html: str) -> list[str]:
    return re.findall(rf"<{tag}>(.*?)</{tag}>", html, flags=re.DOTALL)


@lru_cache(maxsize=1)
def spot_check_page() -> Page:
    """The page (package data) and a CSP allowing exactly its inline script and style, by hash."""
    html = resources.files(__package__).joinpath(PAGE_RESOURCE).read_text(encoding="utf-8")
    scripts, styles = _inline("script", html), _inline("style", html)
    if not scripts or not styles:
        raise ConfigurationError(f"{PAGE_RESOURCE} must hold one inline <script> and one inline <style>")
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(_sha256_source(s) for s in scripts),
            "style-src " + " ".join(_sha256_source(s) for s in styles),
            "connect-src 'self'",
            "img-src 'none'",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )
    return Page(html=html, csp=csp)
