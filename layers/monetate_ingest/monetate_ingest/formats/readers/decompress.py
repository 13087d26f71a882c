"""Byte streams for the readers: gzip detection by magic bytes, guarded decompression, text."""

from __future__ import annotations

import codecs
import io
import re
import zlib
from typing import IO, Any, Protocol

from monetate_ingest.formats.exceptions import FileFormatError

CHUNK = 1 << 16
GZIP_MAGIC = b"\x1f\x8b"
#: Compression ratio is only checked after this many decompressed bytes (small files are fine).
RATIO_CHECK_AFTER = 10 * 1024 * 1024

# Invalid UTF-8 is decoded to lone surrogates (like ``surrogateescape``) and counted, so readers
# take a slow path that looks for them only once the count has moved; valid text costs nothing.
UNDECODABLE = [0]
_ERROR_HANDLER = "monetate_ingest.flag_undecodable"
_SURROGATE = re.compile("[\udc80-\udcff]")


def _flag_undecodable(exc: UnicodeError) -> tuple[str, int]:
    UNDECODABLE[0] += 1
    text, end = codecs.lookup_error("surrogateescape")(exc)
    return str(text), end


codecs.register_error(_ERROR_HANDLER, _flag_undecodable)


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


def undecodable_bytes(text: str) -> str | None:
    """``'0xff 0xfe'`` for the invalid UTF-8 bytes hidden in ``text``; None when it is clean."""
    found = _SURROGATE.findall(text)
    if not found:
        return None
    return " ".join(f"0x{ord(c) - 0xDC00:02x}" for c in found[:4]) + (" …" if len(found) > 4 else "")


def scrub(text: str) -> str:
    """``text`` with invalid-UTF-8 stand-ins replaced by U+FFFD (safe to serialise)."""
    return _SURROGATE.sub("\ufffd", text)


class LongLines:
    """Counts, as the bytes go by, the lines longer than ``limit`` bytes.

    The CSV reader's parser limits fields in characters; a field of multi-byte characters can be
    under that and still over ``limit`` bytes, but only on a line over ``limit`` bytes (or in a
    row of several lines). While :attr:`count` has not moved, no line was that long, and rows of
    one line each need no byte count of their fields. Costs two searches per chunk read.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self._run = 0  # bytes since the last line feed

    def see(self, data: bytes) -> None:
        last = data.rfind(b"\n")
        if last < 0:
            self._run += len(data)
            if self._run > self.limit:
                self.count += 1
            return
        first = data.find(b"\n")
        if self._run + first > self.limit:
            self.count += 1
        if last - first - 1 > self.limit and max(map(len, data[first + 1 : last].split(b"\n"))) > self.limit:
            self.count += 1  # only a limit under the chunk size gets here
        self._run = len(data) - last - 1


class _Prefixed:
    """A source with some already-read bytes pushed back in front of it."""

    def __init__(self, prefix: bytes, stream: Readable) -> None:
        self._prefix = prefix
        self._stream = stream

    def read(self, size: int) -> bytes:
        if self._prefix:
            head, self._prefix = self._prefix, b""
            return head
        data = self._stream.read(size)
        return data or b""


class _PlainRaw(io.RawIOBase):
    def __init__(self, source: _Prefixed, lines: LongLines | None) -> None:
        self._source = source
        self._lines = lines

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._source.read(len(buffer))
        if self._lines is not None:
            self._lines.see(data)
        buffer[: len(data)] = data
        return len(data)


class _GzipRaw(io.RawIOBase):
    """Decompresses gzip (one or more members), refusing bombs and reporting truncation."""

    def __init__(self, source: _Prefixed, max_bytes: int, max_ratio: int, lines: LongLines | None) -> None:
        self._source = source
        self._lines = lines
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self._d = zlib.decompressobj(31)
        self._pending = b""
        self.compressed = 0
        self.decompressed = 0

    def readable(self) -> bool:
        return True

    def _read(self) -> bytes:
        data = self._source.read(CHUNK)
        self.compressed += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        while True:
            if self._d.eof:
                tail = self._d.unused_data or self._read()
                while tail and not tail.strip(b"\0"):  # zero padding after the last member
                    tail = self._read()
                if not tail:
                    return 0
                self._d = zlib.decompressobj(31)
                self._pending = tail
            if not self._pending:
                self._pending = self._read()
                if not self._pending:
                    raise FileFormatError(
                        f"gzip stream is truncated: the compressed data ended after {self.compressed} "
                        f"bytes ({self.decompressed} bytes decompressed); upload the complete file again"
                    )
            try:
                out = self._d.decompress(self._pending, size)
            except zlib.error as exc:
                raise FileFormatError(
                    f"gzip stream is corrupt after {self.compressed} compressed bytes: {exc}"
                ) from None
            self._pending = self._d.unconsumed_tail
            if out:
                self._account(len(out))
                if self._lines is not None:
                    self._lines.see(out)
                buffer[: len(out)] = out
                return len(out)

    def _account(self, n: int) -> None:
        self.decompressed += n
        if self.decompressed > self._max_bytes:
            raise FileFormatError(
                f"file decompresses to more than {self._max_bytes} bytes (MAX_DECOMPRESSED_BYTES); "
                "refusing it as a possible decompression bomb — split it into smaller files"
            )
        if self.decompressed > RATIO_CHECK_AFTER and self.decompressed > self._max_ratio * max(
            self.compressed, 1
        ):
            raise FileFormatError(
                f"file decompresses more than {self._max_ratio}:1 (MAX_COMPRESSION_RATIO) after "
                f"{self.decompressed} bytes; refusing it as a possible decompression bomb"
            )


def open_binary(
    stream: Readable,
    *,
    max_decompressed_bytes: int,
    max_compression_ratio: int,
    long_lines: LongLines | None = None,
) -> io.BufferedReader:
    """A buffered byte stream of the decompressed content (gzip found by its magic bytes);
    ``long_lines`` sees every decompressed byte."""
    head = b""
    while len(head) < 2:
        more = stream.read(2 - len(head))
        if not more:
            break
        head += more
    source = _Prefixed(head, stream)
    raw: io.RawIOBase
    if head == GZIP_MAGIC:
        raw = _GzipRaw(source, max_decompressed_bytes, max_compression_ratio, long_lines)
    else:
        raw = _PlainRaw(source, long_lines)
    return io.BufferedReader(raw, CHUNK)


def open_text(binary: IO[bytes]) -> io.TextIOWrapper:
    """UTF-8 text (BOM dropped, newlines untranslated); bad bytes become flagged surrogates."""
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors=_ERROR_HANDLER, newline="")
