"""Tests for hooklab.sender.deliver through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64

import httpx

from hooklab.sender import Attempt, deliver
from hooklab.signing import verify

SECRET = "whsec_" + base64.b64encode(b"sender-test-key-0123456789abc").decode()
URL = "http://127.0.0.1:9/hooks/shop"


def _run(handler: httpx.MockTransport) -> Attempt:
    async def send() -> Attempt:
        async with httpx.AsyncClient(transport=handler) as client:
            return await deliver(
                client,
                URL,
                b'{"type":"t"}',
                scheme="standard-webhooks",
                secret=SECRET,
                msg_id="evt_1",
            )

    return asyncio.run(send())


def test_deliver_posts_verifiable_signed_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    attempt = _run(httpx.MockTransport(handler))

    [request] = seen
    verified = verify("standard-webhooks", SECRET, request.headers, request.content)
    assert verified.event_id == "evt_1"
    assert (attempt.status_code, attempt.error, attempt.ok) == (200, None, True)
    assert attempt.started_at <= attempt.finished_at


def test_deliver_server_error_is_recorded_not_raised() -> None:
    attempt = _run(httpx.MockTransport(lambda request: httpx.Response(503)))

    assert attempt.status_code == 503
    assert not attempt.ok


def test_deliver_connection_failure_is_recorded_with_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    attempt = _run(httpx.MockTransport(refuse))

    assert attempt.status_code is None
    assert attempt.error == "ConnectError: connection refused"
    assert SECRET not in repr(attempt)
