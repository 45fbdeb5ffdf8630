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
from hooklab.mockprovider import ApiFaults, MockProvider, OAuthConfig, RateLimit
from hooklab.receiver import Source, create_app
from hooklab.sender import Faults
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


def test_rate_limit_answers_429_with_whole_second_retry_after() -> None:
    provider = MockProvider(rate_limit=RateLimit(5, burst=2))

    with serve_in_thread(provider.app) as api, httpx.Client(base_url=api.url) as http:
        answers = [http.get("/v1/events") for _ in range(3)]
        control = http.post("/_control/events", json={"type": "t"})

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "1"
    assert control.status_code == 201  # the control endpoint is not rate-limited
    assert [hit.status for hit in provider.hits] == [200, 200, 429]


def test_list_events_created_since_and_starting_after_alias(
    client: httpx.Client, provider: MockProvider
) -> None:
    ids = _create(client, 4)
    since = provider.events[2]["created"]

    page = client.get("/v1/events", params={"created_since": since}).json()
    after = client.get("/v1/events", params={"starting_after": ids[2]}).json()

    assert [e["id"] for e in page["data"]] == ids[2:]
    assert [e["id"] for e in after["data"]] == ids[3:]


def test_orders_link_header_names_first_prev_next_last(
    client: httpx.Client, provider: MockProvider
) -> None:
    for number in range(5):
        provider.create_order({"n": number})

    answer = client.get("/v1/orders", params={"page": "2", "per_page": "2"})

    assert [o["id"] for o in answer.json()] == ["ord_00000003", "ord_00000004"]
    link = answer.headers["link"]
    for rel, page in (("first", 1), ("prev", 1), ("next", 3), ("last", 3)):
        assert f'page={page}&per_page=2>; rel="{rel}"; title="Page {page}"' in link


def test_post_order_same_key_replays_and_other_body_conflicts(
    client: httpx.Client, provider: MockProvider
) -> None:
    headers = {"Idempotency-Key": "key-1"}

    first = client.post("/v1/orders", json={"total": 1}, headers=headers)
    again = client.post("/v1/orders", json={"total": 1}, headers=headers)
    other = client.post("/v1/orders", json={"total": 2}, headers=headers)

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 409)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert provider.count("order") == 1
    assert [e["type"] for e in provider.events] == ["order.created"]


def test_oauth_tokens_guard_the_api_and_refresh_tokens_are_single_use() -> None:
    provider = MockProvider(oauth=OAuthConfig("id", "secret"))
    refresh = provider.issue_refresh_token()
    grant = {"grant_type": "refresh_token", "refresh_token": refresh}

    with serve_in_thread(provider.app) as api, httpx.Client(base_url=api.url) as http:
        refused = http.get("/v1/events")
        wrong = http.post("/oauth/token", data=grant, auth=("id", "nope"))
        tokens = http.post("/oauth/token", data=grant, auth=("id", "secret")).json()
        reused = http.post("/oauth/token", data=grant, auth=("id", "secret"))
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        allowed = http.get("/v1/events", headers=bearer)
        provider.expire_tokens()
        expired = http.get("/v1/events", headers=bearer)

    assert (
        refused.status_code == 401
        and "invalid_token" in refused.headers["www-authenticate"]
    )
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert tokens["refresh_token"] != refresh
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert (allowed.status_code, expired.status_code) == (200, 401)


def test_emit_drops_and_duplicates_through_the_sender(tmp_path: Path) -> None:
    provider = MockProvider(webhook_secret=SECRET)
    for number in range(40):
        provider.create_event("t", {"n": number})
    ledger = SqliteLedger(tmp_path / "ledger.db")
    receiver = create_app(
        {"mock": Source("mock", Verifier("standard-webhooks", SECRET))}, ledger
    )

    with serve_in_thread(receiver) as hooks:
        provider.webhook_url = f"{hooks.url}/hooks/mock"
        attempts = asyncio.run(provider.emit(faults=Faults(drop=0.5, duplicate=0.5)))

    delivered = {a.msg_id for a in attempts if a.ok}
    duplicates = [a for a in attempts if a.trigger == "duplicate"]
    assert 0 < len(delivered) < 40
    assert duplicates and all(a.msg_id in delivered for a in duplicates)
    assert {d.event_id for d in ledger.deliveries()} == delivered
    assert provider.attempts == attempts
    ledger.close()


def test_random_api_faults_fail_and_slow_a_share_of_requests() -> None:
    provider = MockProvider(
        faults=ApiFaults(error_rate=0.5, slow_rate=0.25, slow_s=0.01, seed=3)
    )

    with serve_in_thread(provider.app) as api, httpx.Client(base_url=api.url) as http:
        statuses = [http.get("/v1/events").status_code for _ in range(40)]

    assert set(statuses) == {200, 503}
    assert 10 <= statuses.count(503) <= 30
