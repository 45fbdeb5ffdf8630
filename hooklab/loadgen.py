"""A small HTTP/1.1 load generator for loopback measurements.

``run_load`` keeps a fixed number of keep-alive connections busy with pre-encoded
POST requests and times each answer. It speaks just enough HTTP (a status line,
headers, a body of ``Content-Length`` bytes) to stay out of the way of the server
it measures; a general client such as httpx costs more CPU per request than the
receiver under test. Connection failures are counted, not raised, so a server
killed mid-load leaves a result that says which requests were answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LoadResult", "encode_post", "run_load"]


@dataclass
class LoadResult:
    """What a load run saw: per request its status (None if never answered).

    ``latencies_s`` holds one entry per answered request, in answer order.
    """

    statuses: list[int | None]
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: int = 0

    @property
    def answered(self) -> int:
        """How many requests got an answer."""
        return len(self.latencies_s)

    @property
    def rate(self) -> float:
        """Answers per second over the run."""
        return self.answered / self.elapsed_s if self.elapsed_s else 0.0

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100) of answer latency, in milliseconds."""
        if not self.latencies_s:
            return float("nan")
        return float(np.percentile(self.latencies_s, q)) * 1000


def encode_post(host: str, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    """One keep-alive POST request as bytes, ready to write to a socket."""
    lines = [f"POST {path} HTTP/1.1", f"host: {host}", f"content-length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]

    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def run_load(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    connections: int = 32,
    duration_s: float | None = None,
    timeout_s: float = 10.0,
) -> LoadResult:
    """Send ``requests`` over ``connections`` connections; stop early at the duration.

    Each connection sends its next request as soon as the previous was answered.
    A connection whose answer takes longer than ``timeout_s`` is closed and counted
    as an error.
    """
    loop = asyncio.get_running_loop()
    result = LoadResult(statuses=[None] * len(requests))
    cursor = iter(range(len(requests)))
    started = time.perf_counter()
    deadline = None if duration_s is None else started + duration_s

    def connection() -> _Connection:
        return _Connection(requests, cursor, result, deadline, loop.create_future())

    opened: list[_Connection] = []
    for _ in range(connections):
        try:
            _, protocol = await loop.create_connection(connection, host, port)
        except OSError:
            result.errors += 1
            continue
        opened.append(protocol)

    for protocol in opened:
        protocol.send_next()
    await _watch(opened, timeout_s)
    result.elapsed_s = time.perf_counter() - started
    return result


async def _watch(opened: list[_Connection], timeout_s: float) -> None:
    """Wait for every connection to finish, closing any that waits past the timeout.

    One watchdog for all connections costs less than a timer per request, which
    matters in a generator meant to use less CPU than the server it measures.
    """
    pending = [protocol.finished for protocol in opened]
    tick = min(0.1, timeout_s / 4)

    while pending:
        await asyncio.wait(pending, timeout=tick)
        now = time.perf_counter()
        for protocol in opened:
            protocol.expire(now - timeout_s)
        pending = [future for future in pending if not future.done()]


class _Connection(asyncio.Protocol):
    """One keep-alive connection working through the shared cursor.

    It parses just enough of each answer (the status line and Content-Length) to
    know where the next one starts; ``finished`` is resolved when it stops, for
    whatever reason.
    """

    def __init__(
        self,
        requests: Sequence[bytes],
        cursor: Iterator[int],
        result: LoadResult,
        deadline: float | None,
        finished: asyncio.Future[None],
    ) -> None:
        self.requests = requests
        self.cursor = cursor
        self.result = result
        self.deadline = deadline
        self.finished = finished
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.index: int | None = None  # the request awaiting its answer
        self.sent = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send_next(self) -> None:
        """Send the next request, or close once the cursor or the time is spent."""
        index = next(self.cursor, None)
        if index is None or (
            self.deadline is not None and time.perf_counter() > self.deadline
        ):
            self._stop()
            return

        assert self.transport is not None
        self.index, self.sent = index, time.perf_counter()
        self.transport.write(self.requests[index])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            answer = _take_response(self.buffer)
        except ValueError:
            self._stop(error=True)
            return
        if answer is None or self.index is None:
            return

        status, used = answer
        del self.buffer[:used]
        self.result.latencies_s.append(time.perf_counter() - self.sent)
        self.result.statuses[self.index] = status
        self.index = None
        self.send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop(error=self.index is not None)

    def expire(self, sent_before: float) -> None:
        """Give up on an answer to a request sent before ``sent_before``."""
        if self.index is not None and self.sent < sent_before:
            self._stop(error=True)

    def _stop(self, *, error: bool = False) -> None:
        if self.finished.done():
            return
        if error:
            self.result.errors += 1
        self.index = None
        self.finished.set_result(None)
        if self.transport is not None:
            self.transport.close()


def _take_response(buffer: bytearray) -> tuple[int, int] | None:
    """The status and length of the first complete answer in ``buffer``, if any."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None

    status_line, _, header_block = bytes(buffer[:end]).partition(b"\r\n")
    length = 0
    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    used = end + 4 + length
    if len(buffer) < used:
        return None
    return int(status_line.split(b" ", 2)[1]), used
