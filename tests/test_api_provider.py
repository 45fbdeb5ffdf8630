"""Tests for hooklab.api against the real mock provider on loopback.

Pagination styles, OAuth refresh (mid-walk, concurrent, before expiry), retries
with idempotency keys, Retry-After and rate-limit headers, timeouts and malformed
answers, each over real HTTP. Waits are recorded by an injected ``sleep`` where
the server's behaviour does not depend on real time passing.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate

import httpx
import pytest

from hooklab.api import (
    ApiAuthError,
    ApiRequestError,
    ApiResponseError,
    AsyncClient,
    Client,
    Cursor,
    LinkHeader,
    NextLink,
    OAuth2,
    Offset,
    PageNumber,
    RetryPolicy,
)
from hooklab.mockprovider import MockProvider, OAuthConfig, RateLimit
from hooklab.servers import serve_in_thread

CLIENT_ID = "hooklab-test"
CLIENT_SECRET = "cs-test-0123456789abcdef"
TOKEN = re.compile(r"(at|rt)_[A-Za-z0-9_-]{16,}")


@contextmanager
def _served(provider: MockProvider) -> Iterator[str]:
    with serve_in_thread(provider.app) as server:
        yield server.url


def _oauth_provider(**config: float) -> MockProvider:
    return MockProvider(oauth=OAuthConfig(CLIENT_ID, CLIENT_SECRET, **config))


def _oauth(url: str, refresh_token: str | None = None) -> OAuth2:
    return OAuth2(
        f"{url}/oauth/token", CLIENT_ID, CLIENT_SECRET, refresh_token=refresh_token
    )


def _fill(provider: MockProvider, count: int) -> None:
    """``count`` orders and ``count`` invoices (and their events)."""
    for number in range(count):
        provider.create_order({"total": number})
        provider.create_invoice({"amount": number})


STYLES = {
    "cursor": ("/v1/events", Cursor(limit=3)),
    "link-header": ("/v1/orders", LinkHeader(limit=3)),
    "page-number": ("/v1/orders", PageNumber(size=3)),
    "next-link": ("/v1/invoices", NextLink(limit=3)),
    "offset": ("/v1/invoices", Offset(limit=3)),
    "offset-total": ("/v1/invoices", Offset(limit=3, total="count")),
}


@pytest.mark.parametrize(
    ("style", "objects", "pages"),
    [
        pytest.param("cursor", 4, [3, 3, 2], id="cursor"),
        pytest.param("cursor", 3, [3, 3], id="cursor-exact"),
        pytest.param("link-header", 7, [3, 3, 1], id="link-header"),
        pytest.param("link-header", 6, [3, 3], id="link-header-exact"),
        pytest.param("page-number", 7, [3, 3, 1], id="page-number"),
        pytest.param("page-number", 6, [3, 3, 0], id="page-number-empty-last"),
        pytest.param("next-link", 7, [3, 3, 1], id="next-link"),
        pytest.param("next-link", 6, [3, 3], id="next-link-null-last"),
        pytest.param("offset", 6, [3, 3, 0], id="offset-empty-last"),
        pytest.param("offset-total", 6, [3, 3], id="offset-total"),
        pytest.param("cursor", 0, [0], id="cursor-empty"),
        pytest.param("link-header", 0, [0], id="link-header-empty"),
        pytest.param("next-link", 0, [0], id="next-link-empty"),
    ],
)
def test_iter_pages_each_style_walks_every_object_once(
    style: str, objects: int, pages: list[int]
) -> None:
    """Events are two per order+invoice pair, so the cursor walks 2 x ``objects``."""
    provider = MockProvider()
    _fill(provider, objects)
    route, paginator = STYLES[style]

    with _served(provider) as url, Client(url) as client:
        walked = list(client.iter_pages(route, style=paginator))

    ids = [item["id"] for page in walked for item in page]
    assert [len(page) for page in walked] == pages
    assert len(ids) == len(set(ids)) == sum(pages)
    assert provider.api_calls == len(pages)
    assert {call.route for call in client.calls} == {route}


def test_items_cursor_with_created_since_skips_older_events() -> None:
    provider = MockProvider()
    provider.create_event("old", {})
    cut = provider.events[0]["created"] + 1e-6
    time.sleep(0.01)
    newer = [provider.create_event("new", {})["id"] for _ in range(5)]

    with _served(provider) as url, Client(url) as client:
        params = {"created_since": repr(cut)}
        got = [
            e["id"]
            for e in client.items("/v1/events", style=Cursor(limit=2), params=params)
        ]

    assert got == newer


def test_next_link_to_another_origin_is_refused() -> None:
    provider = MockProvider()
    _fill(provider, 1)
    provider.inject(200, body=b'{"results": [], "next": "http://203.0.113.9/steal"}')

    with (
        _served(provider) as url,
        Client(url) as client,
        pytest.raises(ApiResponseError, match="another origin"),
    ):
        list(client.items("/v1/invoices", style=NextLink()))


@pytest.mark.parametrize("grant", ["client_credentials", "refresh_token"])
def test_token_expiring_mid_walk_is_refreshed_once_and_walk_completes(
    grant: str,
) -> None:
    """A 401 mid-walk refreshes once; the same page is fetched again, none lost.

    With refresh tokens, the second refresh only works if the rotated token
    from the first answer was kept: the first one is spent.
    """
    provider = _oauth_provider()
    _fill(provider, 5)

    with _served(provider) as url:
        refresh = provider.issue_refresh_token() if grant == "refresh_token" else None
        with Client(url, auth=_oauth(url, refresh)) as client:
            seen = []
            for page in client.iter_pages("/v1/events", style=Cursor(limit=4)):
                seen.extend(item["id"] for item in page)
                if len(seen) == 4:
                    provider.expire_tokens()

    assert seen == [event["id"] for event in provider.events]
    assert provider.token_grants == [grant, grant]
    statuses = [(c.route, c.status) for c in client.calls]
    assert statuses[:3] == [
        ("/oauth/token", 200),
        ("/v1/events", 200),
        ("/v1/events", 401),
    ]
    assert statuses[3:5] == [("/oauth/token", 200), ("/v1/events", 200)]


def test_spent_refresh_token_raises_auth_error_without_the_token() -> None:
    provider = _oauth_provider()

    with _served(provider) as url:
        refresh = provider.issue_refresh_token()
        with Client(url, auth=_oauth(url, refresh)) as first:
            first.get_json("/v1/events")
        with (
            Client(url, auth=_oauth(url, refresh)) as second,
            pytest.raises(ApiAuthError, match="invalid_grant.*single-use") as caught,
        ):
            second.get_json("/v1/events")

    assert refresh not in str(caught.value) and refresh not in repr(caught.value)
    assert caught.value.request.url.path == "/oauth/token"


def test_concurrent_requests_on_expired_token_share_one_refresh() -> None:
    """Eight threads hit a 401 together; one refresh serves them all."""
    provider = _oauth_provider(token_delay_s=0.2)
    _fill(provider, 1)

    with _served(provider) as url, Client(url, auth=_oauth(url)) as client:
        client.get_json("/v1/events")
        provider.expire_tokens()
        start = threading.Barrier(8)

        def fetch() -> None:
            start.wait()
            client.get_json("/v1/orders")

        threads = [threading.Thread(target=fetch) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert provider.token_grants == ["client_credentials", "client_credentials"]
    assert sum(c.route == "/v1/orders" and c.status == 200 for c in client.calls) == 8


def test_token_is_refreshed_before_expiry_without_a_401() -> None:
    provider = _oauth_provider(token_ttl_s=120)
    now = [0.0]

    with _served(provider) as url:
        auth = OAuth2(
            f"{url}/oauth/token", CLIENT_ID, CLIENT_SECRET, clock=lambda: now[0]
        )
        with Client(url, auth=auth) as client:
            client.get_json("/v1/events")
            now[0] = 89.0  # renewal is due 30 s before the 120 s lifetime ends
            client.get_json("/v1/events")
            now[0] = 91.0
            client.get_json("/v1/events")

    assert provider.token_grants == ["client_credentials", "client_credentials"]
    assert 401 not in {hit.status for hit in provider.hits}


def test_post_retried_after_refresh_carries_its_original_body() -> None:
    provider = _oauth_provider()

    with _served(provider) as url, Client(url, auth=_oauth(url)) as client:
        client.get_json("/v1/events")
        provider.expire_tokens()
        order = client.request("POST", "/v1/orders", json={"total": 42}).json()

    posts = [hit for hit in provider.hits if hit.method == "POST"]
    assert [hit.status for hit in posts] == [401, 201]
    assert posts[0].body == posts[1].body == b'{"total":42}'
    assert order["total"] == 42 and provider.count("order") == 1


def test_post_with_idempotency_key_retried_after_timeout_takes_effect_once() -> None:
    """The first attempt times out on the client but creates the order on the
    server; the retry carries the same key and gets the first answer back."""
    provider = MockProvider()
    provider.inject(delay_s=0.6)
    timeout = httpx.Timeout(connect=1, read=0.2, write=1, pool=1)

    with (
        _served(provider) as url,
        Client(url, timeout=timeout, sleep=lambda s: None) as client,
    ):
        order = client.request(
            "POST", "/v1/orders", json={"total": 7}, idempotent=True
        ).json()
        time.sleep(0.6)  # let the timed-out first attempt finish on the server

    posts = [hit for hit in provider.hits if hit.method == "POST"]
    assert len(posts) == 2
    assert posts[0].idempotency_key == posts[1].idempotency_key is not None
    assert provider.count("order") == 1
    assert order["id"] == "ord_00000001"
    assert [c.error for c in client.calls] == ["ReadTimeout", None]


def test_post_without_key_is_not_retried() -> None:
    provider = MockProvider()
    provider.inject(503)

    with (
        _served(provider) as url,
        Client(url, sleep=lambda s: None) as client,
        pytest.raises(ApiRequestError, match="HTTP 503 after 1 attempt") as caught,
    ):
        client.request("POST", "/v1/orders", json={"total": 1})

    assert provider.api_calls == 1
    assert caught.value.request.method == "POST"
    assert caught.value.status_code == 503


def test_get_after_read_timeout_is_retried() -> None:
    provider = MockProvider()
    provider.inject(delay_s=0.5)
    timeout = httpx.Timeout(connect=1, read=0.2, write=1, pool=1)

    with (
        _served(provider) as url,
        Client(url, timeout=timeout, sleep=lambda s: None) as client,
    ):
        body = client.get_json("/v1/events")

    assert body == {"data": [], "has_more": False}
    assert [(c.attempt, c.error) for c in client.calls] == [
        (1, "ReadTimeout"),
        (2, None),
    ]


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("2.5", 2.5, id="fractional"),
        pytest.param(None, None, id="date"),
    ],
)
def test_429_waits_as_retry_after_says(
    retry_after: str | None, waited: float | None
) -> None:
    provider = MockProvider()
    told = retry_after or formatdate(time.time() + 20, usegmt=True)
    provider.inject(429, headers={"Retry-After": told}, count=2)
    waits: list[float] = []

    with _served(provider) as url, Client(url, sleep=waits.append) as client:
        client.get_json("/v1/events")

    assert [c.status for c in client.calls] == [429, 429, 200]
    assert waits == [c.wait_s for c in client.calls[:2]]
    for call in client.calls[:2]:
        assert call.wait_s == call.retry_after_s
        assert (waited or 18) <= call.wait_s <= (waited or 21)


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        pytest.param(
            lambda: formatdate(time.time() - 3600, usegmt=True), 0.0, id="past"
        ),
        pytest.param(lambda: "86400", 5.0, id="absurd"),
    ],
)
def test_odd_retry_after_is_clamped_logged_and_error_carries_request(
    value: object, wait: float, caplog: pytest.LogCaptureFixture
) -> None:
    """A Retry-After in the past means now; one a day away waits the cap. When
    the 429s never stop, the error carries the request."""
    provider = MockProvider()
    provider.inject(429, headers={"Retry-After": value()}, count=3)  # type: ignore[operator]
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, max_wait_s=5.0)

    with (
        _served(provider) as url,
        Client(url, retry=policy, sleep=waits.append) as client,
        caplog.at_level(logging.WARNING, logger="hooklab.api"),
        pytest.raises(ApiRequestError, match="HTTP 429 after 3 attempts") as caught,
    ):
        client.get_json("/v1/events", params={"limit": "5"})

    assert caught.value.request.url.params["limit"] == "5"
    assert caught.value.status_code == 429
    assert [round(c.wait_s, 3) for c in client.calls] == [wait, wait, 0.0]
    clamped = [r for r in caplog.records if r.getMessage() == "api.retry_after_clamped"]
    assert len(clamped) == 2


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        pytest.param(
            b"<html><h1>Oops</h1></html>", "text/html", "HTML page", id="html"
        ),
        pytest.param(
            b'{"data": [', "application/json", "not valid JSON", id="bad-json"
        ),
    ],
)
def test_bad_200_answer_raises_response_error_with_request(
    body: bytes, content_type: str, error: str
) -> None:
    provider = MockProvider()
    provider.inject(200, body=body, content_type=content_type)

    with (
        _served(provider) as url,
        Client(url) as client,
        pytest.raises(ApiResponseError, match=error) as caught,
    ):
        client.get_json("/v1/orders/{id}", path_params={"id": "ord 1"})

    assert caught.value.request.url.raw_path == b"/v1/orders/ord%201"
    assert caught.value.status_code == 200
    assert "Oops" not in str(caught.value)
    assert client.calls[0].route == "/v1/orders/{id}"


def test_page_missing_has_more_raises_rather_than_end_the_walk() -> None:
    provider = MockProvider()
    _fill(provider, 3)
    provider.inject(None, delay_s=0)  # the first page is served normally
    provider.inject(200, body=b'{"data": []}')

    with (
        _served(provider) as url,
        Client(url) as client,
        pytest.raises(ApiResponseError, match='no "has_more" field') as caught,
    ):
        list(client.items("/v1/events", style=Cursor(limit=2)))

    assert caught.value.request.url.params["starting_after"] == "evt_00000002"


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        pytest.param("ratelimit", 1.0, id="x-ratelimit"),
        pytest.param("shopify", 0.5, id="shopify-call-limit"),
    ],
)
def test_rate_limit_headers_hold_requests_back_before_any_429(
    headers: str, pause: float
) -> None:
    provider = MockProvider(rate_limit=RateLimit(20, burst=2, headers=headers))  # type: ignore[arg-type]

    with _served(provider) as url, Client(url) as client:
        for _ in range(3):
            client.get_json("/v1/events")

    assert [c.status for c in client.calls] == [200, 200, 200]
    assert [round(c.queued_s, 1) for c in client.calls][:2] == [0.0, 0.0]
    assert pause - 0.1 <= client.calls[2].queued_s <= pause


def test_client_token_bucket_spaces_requests() -> None:
    provider = MockProvider()
    now = [0.0]
    waits: list[float] = []

    with (
        _served(provider) as url,
        Client(url, rate_limit=4, clock=lambda: now[0], sleep=waits.append) as client,
    ):
        for _ in range(3):
            client.get_json("/v1/events")

    assert waits == [0.25, 0.5]
    assert [c.queued_s for c in client.calls] == [0.0, 0.25, 0.5]


def test_logs_and_call_log_never_hold_a_token(caplog: pytest.LogCaptureFixture) -> None:
    provider = _oauth_provider()

    with (
        caplog.at_level(logging.DEBUG),
        _served(provider) as url,
        Client(url, auth=_oauth(url)) as client,
    ):
        client.get_json("/v1/events")
        provider.expire_tokens()
        client.get_json("/v1/events")

    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert not TOKEN.search(text) and CLIENT_SECRET not in text
    assert not TOKEN.search(repr(client.calls)) and CLIENT_SECRET not in repr(client)


def test_async_client_walks_and_shares_one_refresh_across_tasks() -> None:
    provider = _oauth_provider(token_delay_s=0.1)
    _fill(provider, 5)

    async def scenario(url: str) -> tuple[list[str], list[int]]:
        async with AsyncClient(url, auth=_oauth(url)) as client:
            ids = [
                e["id"] async for e in client.items("/v1/events", style=Cursor(limit=3))
            ]
            provider.expire_tokens()
            pages = await asyncio.gather(
                *(client.get_json("/v1/orders") for _ in range(6))
            )
            return ids, [len(page) for page in pages]

    with _served(provider) as url:
        ids, sizes = asyncio.run(scenario(url))

    assert ids == [event["id"] for event in provider.events]
    assert sizes == [5] * 6
    assert provider.token_grants == ["client_credentials", "client_credentials"]


def test_async_client_retries_429_as_told() -> None:
    provider = MockProvider()
    provider.inject(429, headers={"Retry-After": "2"})
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    async def scenario(url: str) -> object:
        async with AsyncClient(url, sleep=record) as client:
            return await client.get_json("/v1/events")

    with _served(provider) as url:
        body = asyncio.run(scenario(url))

    assert body == {"data": [], "has_more": False}
    assert waits == [2.0]
