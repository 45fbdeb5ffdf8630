"""Tests for hooklab.servers.serve_in_thread."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from hooklab.errors import ConfigError
from hooklab.servers import serve_in_thread


async def _hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


APP = Starlette(routes=[Route("/", _hello)])


def test_serve_in_thread_answers_on_loopback_url() -> None:
    with serve_in_thread(APP) as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url).text == "hello"


def test_serve_in_thread_exit_stops_listening() -> None:
    with serve_in_thread(APP) as server:
        url = server.url

    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=2)


def test_serve_in_thread_inside_running_loop_works() -> None:
    """As in a Jupyter kernel: a loop already runs in the calling thread."""

    async def notebook_cell() -> str:
        with serve_in_thread(APP) as server:
            async with httpx.AsyncClient() as client:
                return (await client.get(server.url)).text

    assert asyncio.run(notebook_cell()) == "hello"


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("0.0.0.0", id="any-ipv4"),
        pytest.param("192.0.2.10", id="lan-address"),
        pytest.param("example.com", id="hostname"),
    ],
)
def test_serve_in_thread_non_loopback_host_raises_config_error(host: str) -> None:
    with (
        pytest.raises(ConfigError, match="loopback only"),
        serve_in_thread(APP, host=host),
    ):
        pass
