"""The read-ahead stream gives the same bytes and errors as the stream it reads, and stops."""

from __future__ import annotations

import gc
import gzip
import io
import time

import pytest
from monetate_ingest.formats.exceptions import FileFormatError
from monetate_ingest.formats.readers import open_rows
from monetate_ingest.formats.readers.read_ahead import ReadAhead


class Trickle:
    """A stream that hands out ``step`` bytes per read, then fails if ``fail_after`` is set."""

    def __init__(self, data: bytes, step: int = 7, fail_after: int | None = None) -> None:
        self.data = data
        self.step = step
        self.pos = 0
        self.fail_after = fail_after
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        if self.fail_after is not None and self.pos >= self.fail_after:
            raise ConnectionResetError("the S3 connection was reset")
        chunk = self.data[self.pos : self.pos + min(size, self.step)]
        self.pos += len(chunk)
        return chunk


def drain(stream: ReadAhead, size: int) -> bytes:
    out = io.BytesIO()
    while chunk := stream.read(size):
        out.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize("size", [1, 5, 64, 10_000])
def test_same_bytes_whatever_the_read_sizes(size: int) -> None:
    data = bytes(range(256)) * 40
    stream = ReadAhead(Trickle(data, step=33), chunk=50, depth=2)
    assert drain(stream, size) == data
    assert stream.read(10) == b"" and stream.read(10) == b""


def test_an_error_comes_after_the_bytes_read_before_it() -> None:
    stream = ReadAhead(Trickle(b"x" * 100, step=10, fail_after=40), chunk=10, depth=8)
    got = b""
    with pytest.raises(ConnectionResetError):
        while chunk := stream.read(3):
            got += chunk
    assert got == b"x" * 40


def test_close_stops_the_thread_while_the_reader_is_behind() -> None:
    # Given a long stream read ahead two chunks deep, of which the reader takes one byte
    source = Trickle(b"y" * 1_000_000, step=100)
    stream = ReadAhead(source, chunk=100, depth=2)
    assert stream.read(1) == b"y"
    # When it is closed  Then the thread ends without reading the rest
    stream.close()
    deadline = time.monotonic() + 5
    while stream.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not stream.running and source.pos < 10_000


def test_an_abandoned_stream_stops_its_thread() -> None:
    stream = ReadAhead(Trickle(b"z" * 1_000_000, step=100), chunk=100, depth=2)
    stream.read(1)
    thread = stream._thread
    del stream
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()


def test_rows_read_ahead_from_plain_and_gzip_files() -> None:
    text = "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(5000))
    for data, key in (
        (text.encode(), "incoming/s/f.csv"),
        (gzip.compress(text.encode()), "incoming/s/f.csv.gz"),
    ):
        plain = [r.values for r in open_rows(io.BytesIO(data), key)]
        source = open_rows(Trickle(data, step=999), key, read_ahead=True)
        try:
            assert [r.values for r in source] == plain and len(plain) == 5000
        finally:
            source.close()


def test_a_truncated_gzip_read_ahead_is_still_a_file_error() -> None:
    text = "a,b\n" + "".join(f"{i},{i * 7919 % 10007}\n" for i in range(10_000))
    data = gzip.compress(text.encode())[:-100]
    with pytest.raises(FileFormatError) as plain:
        list(open_rows(io.BytesIO(data), "incoming/s/f.csv.gz"))
    source = open_rows(io.BytesIO(data), "incoming/s/f.csv.gz", read_ahead=True)
    with pytest.raises(FileFormatError, match="truncated") as ahead:
        list(source)
    source.close()
    assert str(ahead.value) == str(plain.value)
