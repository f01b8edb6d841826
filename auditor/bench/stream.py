"""Read a streamed HTTP body line by line without holding data back.

`requests.iter_lines()` reads 512-byte blocks and can sit on a complete line until the
block fills; `iter_content(None)` reads to EOF on a non-chunked body. Here every read
returns whatever the socket has (`read1`), and each complete line is handed on at once,
stamped with the `perf_counter_ns` of the read that completed it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Protocol

READ_SIZE = 65536
MAX_LINE = 4 * 1024 * 1024  # no streamed event is this long: a server sending more is broken


class OverlongLine(OSError):
    """A line grew past MAX_LINE without a newline (handled like a broken connection)."""


class RawBody(Protocol):
    def read1(self, amt: int | None = None) -> bytes: ...


class LineSplitter:
    """Split a byte stream into lines; a partial last line waits for its newline."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._pending += data
        if b"\n" not in self._pending:
            if len(self._pending) > MAX_LINE:
                raise OverlongLine(f"a streamed line is longer than {MAX_LINE} bytes")
            return []
        *lines, self._pending = self._pending.split(b"\n")
        return [line.rstrip(b"\r") for line in lines]

    def flush(self) -> bytes:
        """What is left at EOF (a last line without a newline)."""
        rest, self._pending = self._pending.rstrip(b"\r"), b""
        return rest


def timed_lines(body: RawBody, deadline_ns: int | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield (arrival perf_counter_ns, line) for every non-empty line of the body.

    `deadline_ns` bounds the whole body: a server that trickles bytes forever still ends
    the request (the per-read socket timeout only catches a complete stall).
    """
    splitter = LineSplitter()
    while True:
        data = body.read1(READ_SIZE)
        now = time.perf_counter_ns()
        if not data:
            break
        for line in splitter.feed(data):
            if line:
                yield now, line
        if deadline_ns is not None and now > deadline_ns:
            raise TimeoutError("response exceeded the request deadline")
    rest = splitter.flush()
    if rest:
        yield time.perf_counter_ns(), rest
