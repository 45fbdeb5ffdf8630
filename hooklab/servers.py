"""Run an ASGI app on a loopback port in a background thread.

``serve_in_thread`` binds the socket itself (port 0, so the OS picks a free port) and
runs uvicorn in a daemon thread with its own event loop. That keeps it usable where a
loop already runs in the main thread, as in a Jupyter kernel, and in tests.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from hooklab.errors import ConfigError, HooklabError
from hooklab.httpguard import GuardedHttpTools

__all__ = ["RunningServer", "ServerStartError", "serve_in_thread"]

logger = logging.getLogger(__name__)


class ServerStartError(HooklabError, RuntimeError):
    """A background server did not start listening in time."""


@dataclass(frozen=True)
class RunningServer:
    """Where a background server listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 10.0,
) -> Iterator[RunningServer]:
    """Serve ``app`` on a free loopback port until the block exits."""
    sock = _bind_loopback(host)
    # proxy_headers off: uvicorn would otherwise rewrite the client address from
    # X-Forwarded-For on loopback; the receiver applies its own trusted-proxy rule.
    # loop "asyncio": uvloop, where installed, would change the process's policy.
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=5,
        proxy_headers=False,
        loop="asyncio",
        http=GuardedHttpTools,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="hooklab-asgi"
    )

    thread.start()
    try:
        _wait_started(server, thread, startup_timeout)
        running = RunningServer(*sock.getsockname()[:2])
        logger.info("server.started", extra={"url": running.url})
        yield running
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout)
        sock.close()
        logger.info("server.stopped", extra={"stopped": not thread.is_alive()})


def _bind_loopback(host: str) -> socket.socket:
    """Refuse anything but a loopback address, then bind a socket on port 0."""
    address = "127.0.0.1" if host == "localhost" else host
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"hooklab serves on loopback only; host {host!r} is not a loopback "
            "address (use 127.0.0.1 or ::1)."
        )

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only
    # when proto says TCP; with proto 0 every response waits ~40 ms for an ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((address, 0))
    return sock


def _wait_started(
    server: uvicorn.Server, thread: threading.Thread, timeout: float
) -> None:
    deadline = time.monotonic() + timeout

    while not server.started:
        if not thread.is_alive():
            raise ServerStartError(
                "The background server stopped before it started; see the uvicorn "
                "log above for the cause."
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"The background server did not start within {timeout:g} s."
            )
        time.sleep(0.005)
