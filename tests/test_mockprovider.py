"""Tests for hooklab.mockprovider: control endpoint, paginated API and webhooks."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hooklab.ledger import SqliteLedger
from hooklab.mockprovider import MockProvider
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier

SECRET = "whsec_" + base64.b64encode(b"mock-provider-test-key-012345").decode()


@pytest.fixture
def provider() -> MockProvider:
    return MockProvider()


@pytest.fixture
def client(provider: MockProvider) -> Iterator[httpx.Client]:
    with (
        serve_in_thread(provider.app) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        yield http


def _create(client: httpx.Client, count: int) -> list[str]:
    ids = []
    for number in range(count):
        body = {"type": "order.created", "data": {"n": number}}
        response = client.post("/_control/events", json=body)
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids


def test_control_create_returns_event_with_sub_second_time(
    client: httpx.Client,
) -> None:
    before = time.time()

    event = client.post("/_control/events", json={"type": "a.b", "data": {}}).json()

    assert event["id"] == "evt_00000001"
    assert event["type"] == "a.b"
    assert before <= event["created"] <= time.time()
    assert isinstance(event["created"], float)


@pytest.mark.parametrize(
    ("limit", "after_index", "expected_slice", "has_more"),
    [
        pytest.param(2, None, slice(0, 2), True, id="first-page"),
        pytest.param(2, 1, slice(2, 4), True, id="middle-page"),
        pytest.param(2, 3, slice(4, 5), False, id="last-partial-page"),
        pytest.param(100, None, slice(0, 5), False, id="all-in-one"),
        pytest.param(5, 4, slice(5, 5), False, id="empty-after-last"),
    ],
)
def test_list_events_pages_oldest_first(
    client: httpx.Client,
    limit: int,
    after_index: int | None,
    expected_slice: slice,
    has_more: bool,
) -> None:
    ids = _create(client, 5)
    params: dict[str, str | int] = {"limit": limit}
    if after_index is not None:
        params["after"] = ids[after_index]

    page = client.get("/v1/events", params=params).json()

    assert [event["id"] for event in page["data"]] == ids[expected_slice]
    assert page["has_more"] is has_more


def test_list_events_without_events_is_empty_page(client: httpx.Client) -> None:
    assert client.get("/v1/events").json() == {"data": [], "has_more": False}


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": "0"}, id="limit-zero"),
        pytest.param({"limit": "101"}, id="limit-too-big"),
        pytest.param({"limit": "ten"}, id="limit-not-integer"),
        pytest.param({"after": "evt_missing"}, id="unknown-cursor"),
    ],
)
def test_list_events_bad_query_is_400_json(
    client: httpx.Client, params: dict[str, str]
) -> None:
    response = client.get("/v1/events", params=params)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"nope", id="not-json"),
        pytest.param(b'{"data": {}}', id="no-type"),
        pytest.param(b'{"type": "a", "data": []}', id="data-not-object"),
    ],
)
def test_control_create_bad_body_is_400(client: httpx.Client, body: bytes) -> None:
    assert client.post("/_control/events", content=body).status_code == 400


def test_api_calls_counts_every_api_request(
    client: httpx.Client, provider: MockProvider
) -> None:
    _create(client, 3)

    client.get("/v1/events")
    client.get("/v1/events", params={"limit": "0"})

    assert provider.api_calls == 2


def test_webhook_is_signed_delivered_and_verifiable(tmp_path: Path) -> None:
    """With a target set, each event arrives at a real receiver, verified."""
    provider = MockProvider(webhook_secret=SECRET)
    ledger = SqliteLedger(tmp_path / "ledger.db")
    receiver = create_app(
        {"mock": Source("mock", Verifier("standard-webhooks", SECRET))}, ledger
    )

    with serve_in_thread(receiver) as hooks, serve_in_thread(provider.app) as api:
        provider.webhook_url = f"{hooks.url}/hooks/mock"
        ids = [
            httpx.post(
                f"{api.url}/_control/events", json={"type": "t", "data": {}}
            ).json()["id"]
            for _ in range(3)
        ]
        _wait_for(lambda: ledger.count() == 3)

    assert [d.event_id for d in ledger.deliveries()] == ids
    assert [a.status_code for a in provider.attempts] == [200, 200, 200]
    assert SECRET not in repr(provider)
    ledger.close()


def test_webhook_url_without_secret_is_refused() -> None:
    provider = MockProvider(webhook_url="http://127.0.0.1:9/hooks/x")

    with serve_in_thread(provider.app) as api:
        response = httpx.post(f"{api.url}/_control/events", json={"type": "t"})

    assert response.status_code == 400
    assert provider.events == []


def _wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


async def _slow_hook(request: Request) -> JSONResponse:
    await asyncio.sleep(1.0)
    return JSONResponse({"accepted": True})


def test_control_create_does_not_wait_for_webhook() -> None:
    """A slow receiver delays the webhook attempt, never the control call."""
    slow = Starlette(routes=[Route("/hook", _slow_hook, methods=["POST"])])
    provider = MockProvider(webhook_secret=SECRET)

    with serve_in_thread(slow) as hooks, serve_in_thread(provider.app) as api:
        provider.webhook_url = f"{hooks.url}/hook"
        started = time.perf_counter()
        httpx.post(f"{api.url}/_control/events", json={"type": "t", "data": {}})
        elapsed = time.perf_counter() - started

    assert elapsed < 0.5
    assert [a.status_code for a in provider.attempts] == [200]
