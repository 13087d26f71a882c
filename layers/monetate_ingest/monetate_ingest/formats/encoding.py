"""A row as compact JSON: the encoding every posted row goes through."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any


def _make_encoder() -> Callable[[Any, int], list[str]]:
    """The C encoder behind ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``.

    Built once: ``json.dumps`` with those arguments builds a new encoder on every call.
    """
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is not None:
        try:
            args = (None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, True)
            c_encode: Callable[[Any, int], list[str]] = make(*args)
            return c_encode
        except TypeError:  # pragma: no cover - a different C signature
            pass
    return lambda obj, _level: [encoder.encode(obj)]  # pragma: no cover - no C accelerator


_encode_chunks = _make_encoder()
_join = "".join


def encode_row(row: Any) -> str:
    """``json.dumps(row, separators=(",", ":"), ensure_ascii=False)``, faster."""
    return _join(_encode_chunks(row, 0))
