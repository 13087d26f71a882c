"""Decoding one JSON value strictly, and saying why one could not be decoded.

The decoder refuses ``NaN``, ``Infinity`` and ``-Infinity`` (Python's ``json`` accepts them; JSON
does not, and the SQS envelope parser refuses them too). A value nested deeper than the parser's
recursion limit, or an integer longer than Python's ``int`` conversion limit, fails to decode just
like broken JSON: :func:`undecodable` turns each of these failures into a reason for that row.
:class:`ValueEnd` finds where such a value ends without decoding it, so a JSON array can reject
that one element and read on.
"""

from __future__ import annotations

import json
import re
import sys
from typing import NoReturn

__all__ = ["DECODER", "DECODE_ERRORS", "NonStandardNumber", "Unbalanced", "ValueEnd", "undecodable"]


class NonStandardNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in the text: not JSON."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _refuse_constant(name: str) -> NoReturn:
    raise NonStandardNumber(name)


#: Called only for the three constants, so normal input decodes at the C scanner's full speed.
DECODER = json.JSONDecoder(parse_constant=_refuse_constant)

#: What :func:`undecodable` handles: everything the decoder raises for one bad value.
DECODE_ERRORS = (ValueError, RecursionError)


def undecodable(exc: BaseException) -> str:
    """Why a value could not be decoded, completing "line …" / "element …" (no position for
    the failures the decoder gives none)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"is not valid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(exc, NonStandardNumber):
        return f"is not valid JSON: {exc.name} is not a JSON number (write null or leave the field out)"
    if isinstance(exc, RecursionError):
        return "cannot be read: it nests arrays or objects too deeply (beyond the JSON parser's limit)"
    if "integer string conversion" in str(exc):
        return f"cannot be read: it holds a whole number of more than {sys.get_int_max_str_digits()} digits"
    return f"cannot be read as JSON: {exc}"


# A string token (from its opening quote), or one structural character.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},"]', re.DOTALL)
_CLOSER = {"[": "]", "{": "}"}


class Unbalanced(ValueError):
    """The value's brackets do not match: where it ends cannot be told."""


class ValueEnd:
    """Finds the ``,`` or ``]`` that ends an array element, looking only at strings and brackets
    (the element need not decode). Resumable: when the text ends first, :meth:`find` returns
    None; call it again with the text grown (the element still starting at ``start``)."""

    def __init__(self) -> None:
        self._stack: list[str] = []
        self._offset = 0  # where to look next, from the element's start

    def find(self, text: str, start: int) -> int | None:
        """The separator's index in ``text``; :class:`Unbalanced` when a bracket closes the wrong
        opener (where the element ends cannot be told)."""
        stack = self._stack
        pos = start + self._offset
        while True:
            match = _TOKEN.search(text, pos)
            if match is None:  # no bracket, comma or string left: read more
                self._offset = len(text) - start
                return None
            at, pos = match.span()
            char = text[at]
            if char == '"':
                if pos == at + 1:  # the text ends inside this string: read more
                    self._offset = at - start
                    return None
                continue
            if char in _CLOSER:
                stack.append(_CLOSER[char])
            elif char in "]}":
                if not stack:
                    if char == "]":
                        return at
                    raise Unbalanced(f"'{char}' closes nothing")
                expected = stack.pop()
                if char != expected:
                    raise Unbalanced(f"'{char}' where '{expected}' was expected")
            elif not stack:  # a comma outside any bracket
                return at
