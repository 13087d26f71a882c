"""``python -m monetate_ingest``: the operator CLI (also the ``monetate-ingest`` console script)."""

from __future__ import annotations

import sys

from monetate_ingest.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
