"""Tests for hooklab.httpguard on a real loopback server."""

from __future__ import annotations

import base64
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hooklab.httpguard import GuardedHttpTools
from hooklab.ledger import SqliteLedger
from hooklab.receiver import Source, create_app
from hooklab.servers import RunningServer, serve_in_thread
from hooklab.signing import Verifier, sign

SECRET = "whsec_" + base64.b64encode(b"httpguard-test-key-0123456789").decode()


@pytest.fixture
def guarded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RunningServer, SqliteLedger]]:
    """The receiver with short limits: 0.5 s for headers, 4 KiB of them, 20 sockets."""
    monkeypatch.setattr(GuardedHttpTools, "header_timeout_s", 0.5)
    monkeypatch.setattr(GuardedHttpTools, "max_header_bytes", 4096)
    monkeypatch.setattr(GuardedHttpTools, "max_connections", 20)
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        sources = {"shop": Source("shop", Verifier("standard-webhooks", SECRET))}
        with serve_in_thread(create_app(sources, ledger)) as server:
            yield server, ledger


def _connect(server: RunningServer) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=10)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str]]:
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _deliver(server: RunningServer, event_id: str) -> httpx.Response:
    body = b'{"type": "order.created"}'
    headers = sign("standard-webhooks", SECRET, body, msg_id=event_id)
    return httpx.post(f"{server.url}/hooks/shop", content=body, headers=headers)


def test_headers_that_never_finish_are_answered_408(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, _ = guarded
    started = time.monotonic()

    with _connect(server) as sock:
        sock.sendall(b"POST /hooks/shop HTTP/1.1\r\nhost: x\r\n")
        status, answer = _answer(sock)

    assert (status, answer["error"]) == (408, "timeout")
    assert 0.5 <= time.monotonic() - started < 3
    assert _deliver(server, "after").status_code == 200


def test_connection_that_sends_nothing_is_closed(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, _ = guarded

    with _connect(server) as sock:
        status, _ = _answer(sock)

    assert status == 408


def test_oversized_headers_are_answered_431_and_not_stored(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, ledger = guarded
    body = b'{"type": "order.created"}'
    headers = sign("standard-webhooks", SECRET, body, msg_id="padded")
    headers["x-pad"] = "a" * 5000  # the limit here is 4 KiB

    response = httpx.post(f"{server.url}/hooks/shop", content=body, headers=headers)

    assert response.status_code == 431
    assert response.json()["error"] == "headers"
    assert ledger.count() == 0
    assert _deliver(server, "after").status_code == 200


def test_header_that_never_ends_is_cut_off_before_it_is_whole(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    """httptools keeps an unfinished header in memory; it is refused as it grows."""
    server, _ = guarded

    with _connect(server) as sock:
        sock.sendall(b"POST /hooks/shop HTTP/1.1\r\nhost: x\r\nx-big: ")
        try:
            for _ in range(100):
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed while still sending
        status, answer = _answer(sock)

    assert (status, answer["error"]) == (431, "headers")


def test_pipelined_request_after_a_large_body_is_not_mistaken_for_large_headers(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, ledger = guarded
    body = json.dumps({"type": "order.created", "note": "z" * 100_000}).encode()
    headers = sign("standard-webhooks", SECRET, body, msg_id="pipe1")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    first = (
        f"POST /hooks/shop HTTP/1.1\r\nhost: x\r\n{head}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body

    with _connect(server) as sock:
        sock.sendall(first + b"POST /hooks/shop HTTP/1.1\r\nhost: x\r\n")
        raw = sock.recv(65536)

    assert raw.startswith(b"HTTP/1.1 200"), raw[:80]
    assert ledger.count() == 1


def test_large_body_is_not_mistaken_for_large_headers(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, ledger = guarded
    body = json.dumps({"type": "order.created", "note": "z" * 200_000}).encode()
    headers = sign("standard-webhooks", SECRET, body, msg_id="big")

    response = httpx.post(f"{server.url}/hooks/shop", content=body, headers=headers)

    assert response.status_code == 200
    assert ledger.count() == 1


def test_connections_past_the_cap_are_closed_and_the_rest_still_served(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, _ = guarded
    idle = [_connect(server) for _ in range(20)]
    try:
        time.sleep(0.2)
        with _connect(server) as extra:
            try:
                closed = extra.recv(100) == b""
            except ConnectionResetError:
                closed = True
            assert closed  # closed before anything was read
        idle.pop().close()
        time.sleep(0.2)
        assert _deliver(server, "within-cap").status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_unparsable_request_is_answered_400_json(
    guarded: tuple[RunningServer, SqliteLedger],
) -> None:
    server, _ = guarded

    with _connect(server) as sock:
        sock.sendall(b"POST /hooks/shop HTTP/1.1\r\ncontent-length: nope\r\n\r\n")
        status, answer = _answer(sock)

    assert (status, answer["error"]) == (400, "http")
    assert _deliver(server, "after").status_code == 200


def test_oversized_headers_sent_with_their_body_log_no_parser_error(
    guarded: tuple[RunningServer, SqliteLedger], caplog: pytest.LogCaptureFixture
) -> None:
    """The body that follows refused headers in the same packet is ignored."""
    server, ledger = guarded
    uvicorn_errors = logging.getLogger("uvicorn.error")  # does not reach the root
    uvicorn_errors.addHandler(caplog.handler)
    try:
        with _connect(server) as sock:
            sock.sendall(
                b"POST /hooks/shop HTTP/1.1\r\nhost: x\r\nx-pad: "
                + b"a" * 5000
                + b"\r\ncontent-length: 5\r\n\r\nhello"
            )
            status, _ = _answer(sock)
    finally:
        uvicorn_errors.removeHandler(caplog.handler)

    assert status == 431
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert ledger.count() == 0
