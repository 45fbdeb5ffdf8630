"""Connection limits uvicorn's httptools protocol does not set on its own.

uvicorn times out idle keep-alive connections but not a request whose headers never
finish, nor a connection that sends nothing, and httptools accepts headers of any
size. A client without any secret could therefore hold every file descriptor the
server has, or stream headers into memory without end. ``GuardedHttpTools`` adds:

* a header deadline: a connection must finish each request's headers within
  ``HEADER_TIMEOUT_S`` of its first byte (or of connecting), else it is answered
  408 and closed;
* a header size limit: more than ``MAX_HEADER_BYTES`` of request line and headers
  is answered 431 and closed;
* a connection cap: past ``MAX_CONNECTIONS`` open connections a new one is closed
  at once, before anything is read, so the server keeps file descriptors for
  the connections it already serves.

Known limit: these bound the damage, they do not stop a determined client. One
that holds 1,024 connections (refreshing each within the header deadline) shuts
real senders out, and 1,024 stalled 1 MiB bodies hold about 1 GiB; limits per
client address belong in the reverse proxy a public receiver should sit behind.

Deadlines are checked by one sweep a second for all connections rather than a
timer per request, which would cost every delivery a little (see ``_Stalls`` in
``hooklab.receiver`` for the same choice about bodies). The answers are JSON, like
the receiver's own refusals, and so is the 400 for a request httptools cannot parse.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = [
    "HEADER_TIMEOUT_S",
    "MAX_CONNECTIONS",
    "MAX_HEADER_BYTES",
    "GuardedHttpTools",
]

logger = logging.getLogger(__name__)

HEADER_TIMEOUT_S = 10.0
MAX_HEADER_BYTES = 64 * 1024
MAX_CONNECTIONS = 1024
_SWEEP_S = 1.0
_READ_ALLOWANCE = 256 * 1024


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline, size limit and cap.

    Pass the class as ``uvicorn.Config(http=GuardedHttpTools)``; the limits are
    class attributes, so a subclass (or a test) can set its own.
    """

    header_timeout_s = HEADER_TIMEOUT_S
    max_header_bytes = MAX_HEADER_BYTES
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: float | None = None  # None: not reading headers
        self._head_bytes = 0
        self._refused = False  # answered already; ignore the rest of the request

    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            _watch(self.loop).warn_cap(len(self.connections))
            transport.abort()
            return
        self._start_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # httptools holds an unfinished header in memory, so bytes that arrive
        # while headers are still being read are counted as they come. A chunk may
        # also carry the end of the previous request (pipelining), up to the
        # 256 KiB asyncio reads at once, hence the allowance; the exact count is
        # taken when the headers are complete.
        if self._head_deadline is not None:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes + _READ_ALLOWANCE:
                self._refuse_headers()

    def on_headers_complete(self) -> None:
        self._head_deadline = None
        _watch(self.loop).discard(self)
        size = len(self.url) + sum(len(k) + len(v) + 4 for k, v in self.headers)
        if size > self.max_header_bytes:
            self._refuse_headers()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse: answered 400 in JSON, like the rest."""
        reason = "The request is not valid HTTP/1.1 (request line, header or framing)."
        self._refuse(b"400 Bad Request", "http", reason)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_deadline is None:  # a keep-alive connection's next request
            self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        _watch(self.loop).discard(self)
        super().connection_lost(exc)

    def expire_head(self, now: float) -> bool:
        """Answer 408 and close if the headers are past their deadline; say if so."""
        if self._head_deadline is None or now < self._head_deadline:
            return False
        self._refuse(
            b"408 Request Timeout",
            "timeout",
            f"The request headers did not arrive within {self.header_timeout_s:g} s.",
        )
        return True

    def _start_head(self) -> None:
        self._head_deadline = self.loop.time() + self.header_timeout_s
        self._head_bytes = 0
        _watch(self.loop).add(self)

    def _refuse_headers(self) -> None:
        self._refuse(
            b"431 Request Header Fields Too Large",
            "headers",
            f"The request line and headers exceed {self.max_header_bytes} bytes.",
        )

    def _refuse(self, status: bytes, error: str, reason: str) -> None:
        self._head_deadline = None
        self._refused = True
        _watch(self.loop).discard(self)
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier request on this connection is still being answered: let
            # that answer go out, then close instead of reading this one.
            self.cycle.keep_alive = False
            self.transport.pause_reading()
            return
        body = json.dumps({"error": error, "reason": reason}).encode()
        head = (
            b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(head + body)
        self.transport.close()


class _HeadWatch:
    """One event loop's guard state: the connections reading headers, swept once a
    second while any are, and when the connection cap was last logged."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.reading: set[GuardedHttpTools] = set()
        self.sweeping = False
        self.cap_warned_at = -60.0

    def add(self, protocol: GuardedHttpTools) -> None:
        self.reading.add(protocol)
        if not self.sweeping:
            self.sweeping = True
            self.loop.call_later(_SWEEP_S, self.sweep)

    def discard(self, protocol: GuardedHttpTools) -> None:
        self.reading.discard(protocol)

    def warn_cap(self, open_connections: int) -> None:
        """Log the connection cap at most once a minute: a client that reconnects
        as fast as it is closed must not fill the log."""
        now = self.loop.time()
        if now - self.cap_warned_at >= 60.0:
            self.cap_warned_at = now
            logger.warning(
                "http.too_many_connections", extra={"open": open_connections}
            )

    def sweep(self) -> None:
        now = self.loop.time()
        for protocol in list(self.reading):
            if protocol.expire_head(now):
                self.reading.discard(protocol)

        self.sweeping = bool(self.reading) and not self.loop.is_closed()
        if self.sweeping:
            self.loop.call_later(_SWEEP_S, self.sweep)


_WATCHES: dict[asyncio.AbstractEventLoop, _HeadWatch] = {}


def _watch(loop: asyncio.AbstractEventLoop) -> _HeadWatch:
    watch = _WATCHES.get(loop)
    if watch is None:
        for closed in [other for other in _WATCHES if other.is_closed()]:
            del _WATCHES[closed]
        watch = _WATCHES[loop] = _HeadWatch(loop)
    return watch
