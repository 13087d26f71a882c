"""Read a byte stream on a background thread, a few chunks ahead of the reader.

Why a thread of our own: the S3 object arrives over a socket, and every wait for it — the
network, then the GIL after each ``recv`` while other threads post batches — stalls the thread
that parses and encodes rows. With the body read ahead, those waits overlap the parsing; memory
stays bounded at ``depth`` chunks. (boto3's transfer manager downloads to a file or buffer, not
to a bounded stream, so it does not fit a file larger than the function's memory.)
"""

from __future__ import annotations

import queue
import threading
import weakref
from typing import Any

from monetate_ingest.formats.readers.decompress import Readable

#: Bytes per background read and chunks held ahead: 4 MiB in memory at most.
CHUNK = 1 << 20
DEPTH = 4
_END = b""


class ReadAhead:
    """A ``read(size)`` stream over ``stream``, filled by a daemon thread. Call :meth:`close` when
    done early (it is also closed when garbage-collected); errors of ``stream.read`` are raised
    by :meth:`read` in order, after the bytes read before them."""

    def __init__(self, stream: Readable, *, chunk: int = CHUNK, depth: int = DEPTH) -> None:
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._buffer = b""
        self._offset = 0
        self._ended = False
        self._thread = threading.Thread(
            target=_fill, args=(stream, chunk, self._queue, self._stop), name="read-ahead", daemon=True
        )
        self._thread.start()
        weakref.finalize(self, self._stop.set)

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that remain of the current chunk when ``size`` < 0)."""
        if self._offset >= len(self._buffer):
            if self._ended:
                return _END
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._ended = True
                raise item
            if not item:
                self._ended = True
                return _END
            self._buffer, self._offset = item, 0
        start = self._offset
        end = len(self._buffer) if size < 0 else start + size
        self._offset = end
        if start == 0 and end >= len(self._buffer):
            return self._buffer
        return self._buffer[start:end]

    def close(self) -> None:
        """Stop the background reads (the thread ends at its next chunk)."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def _fill(stream: Any, chunk: int, out: queue.Queue[bytes | BaseException], stop: threading.Event) -> None:
    """The thread: read chunks into ``out`` until the end, an error, or ``stop``."""
    while not stop.is_set():
        try:
            data: bytes | BaseException = stream.read(chunk) or _END
        except BaseException as exc:  # handed to the reader, raised there
            data = exc
        while not stop.is_set():
            try:
                out.put(data, timeout=0.1)
                break
            except queue.Full:
                continue
        if not isinstance(data, bytes) or not data:
            return
