"""One table for every benchmark: figure, ours, baseline, unit, ratio."""

from __future__ import annotations

from typing import Any


def print_table(rows: list[dict[str, Any]]) -> None:
    headers = ("figure", "ours", "baseline", "unit", "ratio")
    cells = [[str(r.get(h, "")) for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        pairs = enumerate(zip(c, widths, strict=True))
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in pairs))
