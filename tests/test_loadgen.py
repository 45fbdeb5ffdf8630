"""Tests for hooklab.loadgen against small real servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from hooklab.loadgen import encode_post, run_load

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _requests(count: int) -> list[bytes]:
    return [
        encode_post("127.0.0.1", "/", {}, f"body {n}".encode()) for n in range(count)
    ]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    return await reader.readexactly(length)


async def _with_server(
    handler: Handler, load: Callable[[int], Awaitable[object]]
) -> object:
    """Serve ``handler`` on a free loopback port while ``load(port)`` runs."""
    writers: list[asyncio.StreamWriter] = []

    async def closing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writers.append(writer)
        # The load generator hangs up when it is done, ending a handler's read.
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await handler(reader, writer)

    server = await asyncio.start_server(closing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        result = await load(port)
    for writer in writers:
        writer.close()
        await writer.wait_closed()
    return result


async def _echo_status(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Answer each request 200, or 201 when its body ends in an odd digit."""
    while True:
        body = await _read_request(reader)
        status = b"201 Created" if int(body[-1:]) % 2 else b"200 OK"
        writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()


def test_run_load_answers_every_request_with_its_own_status() -> None:
    requests = _requests(500)

    result = asyncio.run(
        _with_server(
            _echo_status,
            lambda port: run_load("127.0.0.1", port, requests, connections=8),
        )
    )

    assert result.answered == 500 and result.errors == 0
    assert result.statuses == [201 if n % 2 else 200 for n in range(500)]
    assert result.rate > 0 and 0 < result.percentile_ms(50) <= result.percentile_ms(99)


def test_run_load_stops_at_the_duration() -> None:
    requests = _requests(10_000)

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await _read_request(reader)
            await asyncio.sleep(0.01)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")

    started = time.monotonic()
    result = asyncio.run(
        _with_server(
            slow,
            lambda port: run_load(
                "127.0.0.1", port, requests, connections=4, duration_s=0.3
            ),
        )
    )

    assert time.monotonic() - started < 2
    assert 0 < result.answered < len(requests)
    assert result.errors == 0


def test_run_load_counts_a_silent_server_as_errors_after_the_timeout() -> None:
    async def silent(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await reader.read()  # never answers; returns once the client closes

    started = time.monotonic()
    result = asyncio.run(
        _with_server(
            silent,
            lambda port: run_load(
                "127.0.0.1", port, _requests(10), connections=3, timeout_s=0.3
            ),
        )
    )

    assert 0.3 <= time.monotonic() - started < 2
    assert (result.answered, result.errors) == (0, 3)
    assert result.statuses == [None] * 10


def test_run_load_counts_a_connection_closed_mid_load_and_keeps_the_answers() -> None:
    async def three_then_hang_up(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        for _ in range(3):
            await _read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        await _read_request(reader)
        writer.close()  # hang up on the fourth request

    result = asyncio.run(
        _with_server(
            three_then_hang_up,
            lambda port: run_load(
                "127.0.0.1", port, _requests(10), connections=1, timeout_s=5
            ),
        )
    )

    assert result.statuses[:4] == [200, 200, 200, None]
    assert (result.answered, result.errors) == (3, 1)


def test_run_load_counts_a_garbled_answer_as_an_error() -> None:
    async def garbled(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 OK\r\ncontent-length: many\r\n\r\n")
        await reader.read()

    result = asyncio.run(
        _with_server(
            garbled,
            lambda port: run_load("127.0.0.1", port, _requests(5), connections=1),
        )
    )

    assert (result.answered, result.errors) == (0, 1)


def test_run_load_counts_a_refused_connection() -> None:
    async def closed_port() -> object:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await run_load("127.0.0.1", port, _requests(5), connections=2)

    result = asyncio.run(closed_port())

    assert (result.answered, result.errors) == (0, 2)
