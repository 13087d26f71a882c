"""Where a broken CSV row ends: a re-reading of its lines the way ``csv.reader`` parses them.

When the C parser gives up on a row (a field over the size limit, or the file ending inside a
quoted field), it has consumed the row's lines but says nothing about them. :class:`RowScan` is
fed those lines (and, for a field still open, the lines after them, which it never holds) and
tells which field was too long, where a quote opened that never closed, and whether the lines
after that quote hold anything. It follows the dialect the reader uses: ``"`` quotes, ``""`` is a
quote inside a quoted field, strict (a quote closing a field must be followed by the delimiter or
the end of the line, else the rest of the line is dropped, as ``csv`` does).
"""

from __future__ import annotations


class RowScan:
    """One row's lines, fed in order with :meth:`feed` (each line with its line break)."""

    def __init__(self, delimiter: str, max_chars: int) -> None:
        self._delimiter = delimiter
        self._max_chars = max_chars
        self.lines = 0
        #: 0-based index of the first field longer than ``max_chars``, if any.
        self.big_field: int | None = None
        #: The row's fields so far (its length is the index of the current field).
        self.fields = 0
        self.in_quote = False
        #: Line (0-based, in this row) where the open quoted field started.
        self.quote_line = 0
        #: A line that is not blank came after the line where the open quoted field started.
        self.swallowed = False
        #: A quote closed a field and something other than a delimiter followed it.
        self.malformed = False
        self.done = False
        self._length = 0
        self._at_start = True

    @property
    def open(self) -> bool:
        """The lines so far end inside a quoted field: the row goes on."""
        return self.in_quote and not self.done

    def feed(self, text: str) -> None:
        """Read one more line of the row (ignored once the row has ended)."""
        if self.done:
            return
        if self.in_quote and self.lines > self.quote_line and text and not text.isspace():
            self.swallowed = True
        self.lines += 1
        end = len(text)
        while end and text[end - 1] in "\r\n":
            end -= 1
        pos: int | None = 0
        while pos is not None and not self.done:
            pos = self._quoted(text, pos) if self.in_quote else self._unquoted(text, pos, end)

    def _quoted(self, text: str, pos: int) -> int | None:
        """Inside a quoted field from ``pos``: to its closing quote (the position after it), or
        through the line (None: the field goes on past it, its line break part of it)."""
        while True:
            quote = text.find('"', pos)
            if quote < 0:
                self._length += len(text) - pos
                self._stop_line()
                return None
            self._length += quote - pos
            pos = quote + 1
            if text[pos : pos + 1] == '"':  # a doubled quote is one quote of the field
                self._length += 1
                pos += 1
                continue
            self.in_quote = False
            after = text[pos : pos + 1]
            self._end_field()
            if after == self._delimiter:
                self._at_start = True
                return pos + 1
            if after not in ("", "\r", "\n"):
                self.malformed = True  # csv drops the rest of this line
            self.done = True
            return pos

    def _unquoted(self, text: str, pos: int, end: int) -> int:
        """At ``pos`` outside quotes: a quoted field starts, or an unquoted one runs to the
        next delimiter or the line's end."""
        if self._at_start and text[pos : pos + 1] == '"':
            self._at_start = False
            self.in_quote = True
            self.quote_line = self.lines - 1
            return pos + 1
        self._at_start = False
        stop = text.find(self._delimiter, pos, end)
        if stop < 0:
            self._length += end - pos
            self._end_field()
            self.done = True
            return end
        self._length += stop - pos
        self._end_field()
        self._at_start = True
        return stop + 1

    def _stop_line(self) -> None:
        """The line ended inside a quoted field."""
        if self.big_field is None and self._length > self._max_chars:
            self.big_field = self.fields

    def _end_field(self) -> None:
        if self.big_field is None and self._length > self._max_chars:
            self.big_field = self.fields
        self.fields += 1
        self._length = 0
