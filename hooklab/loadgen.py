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
    """
    result = LoadResult(statuses=[None] * len(requests))
    cursor = iter(range(len(requests)))
    started = time.perf_counter()
    deadline = None if duration_s is None else started + duration_s

    workers = [
        _connection(host, port, requests, cursor, result, deadline, timeout_s)
        for _ in range(connections)
    ]
    await asyncio.gather(*workers)
    result.elapsed_s = time.perf_counter() - started
    return result


async def _connection(
    host: str,
    port: int,
    requests: Sequence[bytes],
    cursor: Iterator[int],
    result: LoadResult,
    deadline: float | None,
    timeout_s: float,
) -> None:
    """One keep-alive connection working through the shared cursor."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        result.errors += 1
        return

    try:
        for index in cursor:
            if deadline is not None and time.perf_counter() > deadline:
                break
            sent = time.perf_counter()
            writer.write(requests[index])
            status = await asyncio.wait_for(_read_response(reader), timeout_s)
            result.latencies_s.append(time.perf_counter() - sent)
            result.statuses[index] = status
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        result.errors += 1
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    length = 0

    for line in header_block.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(status_line.split(b" ", 2)[1])
