"""Tests for hooklab.api.Client over a mock transport: call log, cursor pages, errors.

Behaviour that lives in HTTP (auth, limits, retries, every pagination style) is
tested against the real mock provider in test_api_provider.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hooklab.api import ApiRequestError, Client
from hooklab.errors import ApiError
from hooklab.mockprovider import MockProvider
from hooklab.servers import serve_in_thread

EVENTS = [{"id": f"evt_{n}"} for n in range(1, 6)]
Handler = Callable[[httpx.Request], httpx.Response]


def _paged(request: httpx.Request) -> httpx.Response:
    """A fake list endpoint over EVENTS honouring ``after`` and ``limit``."""
    ids = [event["id"] for event in EVENTS]
    after = request.url.params.get("after")
    start = ids.index(after) + 1 if after else 0
    limit = int(request.url.params["limit"])
    page = EVENTS[start : start + limit]
    return httpx.Response(
        200, json={"data": page, "has_more": start + limit < len(EVENTS)}
    )


def _client(handler: Handler, waits: list[float] | None = None) -> Client:
    """A client on ``handler`` whose waits are recorded instead of slept."""
    return Client(
        "http://127.0.0.1:9",
        transport=httpx.MockTransport(handler),
        sleep=(waits if waits is not None else []).append,
    )


@pytest.mark.parametrize(
    ("limit", "pages"),
    [
        pytest.param(2, [2, 2, 1], id="three-pages"),
        pytest.param(5, [5], id="exact-fit"),
        pytest.param(100, [5], id="one-big-page"),
    ],
)
def test_iter_pages_follows_has_more_to_the_end(limit: int, pages: list[int]) -> None:
    with _client(_paged) as client:
        walked = list(client.iter_pages("/v1/events", limit=limit))

    assert [len(page) for page in walked] == pages
    assert [e["id"] for page in walked for e in page] == [e["id"] for e in EVENTS]
    assert len(client.calls) == len(pages)


def test_iter_pages_cursor_resumes_after_known_id() -> None:
    with _client(_paged) as client:
        walked = list(client.iter_pages("/v1/events", cursor="evt_3"))

    assert walked == [[{"id": "evt_4"}, {"id": "evt_5"}]]


def test_iter_pages_failed_middle_page_raises_with_request() -> None:
    """A 500 on page two raises; the walk does not end as if it were complete."""

    def flaky(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("after"):
            return httpx.Response(500)
        return _paged(request)

    with _client(flaky) as client, pytest.raises(ApiError, match="HTTP 500") as caught:
        list(client.iter_pages("/v1/events", limit=2))

    assert [c.status for c in client.calls] == [200, 500, 500, 500, 500]

    assert isinstance(caught.value, ApiRequestError)
    assert caught.value.request.method == "GET"
    assert caught.value.request.url.params["after"] == "evt_2"
    assert caught.value.status_code == 500


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(200, text="<html>"), id="not-json"),
        pytest.param(httpx.Response(200, json=[1, 2]), id="json-list"),
        pytest.param(httpx.Response(200, json={"data": []}), id="no-has-more"),
        pytest.param(
            httpx.Response(200, json={"data": [], "has_more": True}),
            id="has-more-but-empty",
        ),
        pytest.param(
            httpx.Response(200, json={"data": [{"n": 1}], "has_more": True}),
            id="has-more-no-id",
        ),
    ],
)
def test_iter_pages_malformed_page_raises(response: httpx.Response) -> None:
    with _client(lambda request: response) as client, pytest.raises(ApiRequestError):
        list(client.iter_pages("/v1/events"))


def test_request_transport_failure_is_retried_recorded_and_raised() -> None:
    """A refused connection is tried four times (backing off) and then raised."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    waits: list[float] = []
    with (
        _client(refuse, waits) as client,
        pytest.raises(ApiRequestError, match="after 4 attempts: ConnectError"),
    ):
        client.request("GET", "/v1/events")

    assert [(c.attempt, c.status, c.bytes, c.error) for c in client.calls] == [
        (n, None, 0, "ConnectError") for n in (1, 2, 3, 4)
    ]
    assert {c.route for c in client.calls} == {"/v1/events"}
    assert len(waits) == 3
    assert all(0 <= wait <= cap for wait, cap in zip(waits, (0.5, 1, 2), strict=True))


def test_request_logs_one_line_and_records_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with (
        _client(lambda request: httpx.Response(200, json={"ok": True})) as client,
        caplog.at_level(logging.INFO, logger="hooklab.api"),
    ):
        body: Any = client.get_json("/v1/status", params={"q": "1"})

    assert body == {"ok": True}
    [call] = client.calls
    assert (call.route, call.status, call.attempt, call.bytes) == (
        "/v1/status",
        200,
        1,
        len(b'{"ok":true}'),
    )
    assert call.latency_s >= 0
    assert [record.getMessage() for record in caplog.records] == ["api.request"]


def test_error_message_omits_query_string() -> None:
    """Query strings can carry credentials, so messages name the URL without one."""
    with (
        _client(lambda request: httpx.Response(401)) as client,
        pytest.raises(ApiRequestError) as caught,
    ):
        client.request("GET", "/v1/events", params={"api_key": "k-123"})

    assert "k-123" not in str(caught.value)


def test_iter_pages_against_mock_provider_walks_every_event() -> None:
    provider = MockProvider()
    for number in range(7):
        provider.create_event("order.created", {"n": number})

    with serve_in_thread(provider.app) as server, Client(server.url) as client:
        pages = list(client.iter_pages("/v1/events", limit=3))

    assert [len(page) for page in pages] == [3, 3, 1]
    assert provider.api_calls == 3


def test_iter_pages_stops_an_api_whose_pagination_loops() -> None:
    """A real server that says has_more with the same last id on every page."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    served: list[str] = []

    async def events(request: Request) -> JSONResponse:
        served.append(str(request.query_params))
        return JSONResponse({"data": [{"id": "evt_1"}], "has_more": True})

    app = Starlette(routes=[Route("/events", events)])
    with serve_in_thread(app) as server, Client(server.url) as client:
        pages = client.iter_pages("/events")
        with pytest.raises(ApiError, match="pagination loops"):
            list(pages)

    assert len(served) == 2  # the first page, and its repeat: then it stopped
