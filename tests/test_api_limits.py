"""Tests for hooklab.api's pure parts: Retry-After, rate-limit headers, the bucket,
the retry policy, Link headers and page envelopes (including Stripe's real one)."""

from __future__ import annotations

import json
import random
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from hooklab.api import (
    ApiResponseError,
    Cursor,
    LinkHeader,
    NextLink,
    Offset,
    PageNumber,
    RetryPolicy,
    TokenBucket,
    header_pause_s,
    parse_link_header,
    retry_after_s,
)
from hooklab.errors import ConfigError

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2", 2.0, id="seconds"),
        pytest.param(" 2.0 ", 2.0, id="shopify-fractional"),
        pytest.param(formatdate(NOW + 30, usegmt=True), 30.0, id="http-date"),
        pytest.param(formatdate(NOW - 60, usegmt=True), -60.0, id="date-in-past"),
        pytest.param("soon", None, id="unreadable"),
        pytest.param("nan", None, id="not-a-number"),
        pytest.param("", None, id="empty"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_retry_after_s_reads_both_forms(value: str | None, expected: float) -> None:
    assert retry_after_s(value, NOW) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param(
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}, 5.0, id="delta"
        ),
        pytest.param(
            {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 7)},
            7.0,
            id="github-epoch",
        ),
        pytest.param(
            {"RateLimit-Remaining": "0", "RateLimit-Reset": "3"}, 3.0, id="ietf"
        ),
        pytest.param(
            {"X-RateLimit-Remaining": "4", "X-RateLimit-Reset": "5"}, None, id="left"
        ),
        pytest.param({"X-RateLimit-Remaining": "0"}, None, id="no-reset"),
        pytest.param(
            {"X-Shopify-Shop-Api-Call-Limit": "40/40"}, 0.5, id="shopify-full"
        ),
        pytest.param(
            {"X-Shopify-Shop-Api-Call-Limit": "39/40"}, None, id="shopify-room"
        ),
        pytest.param({"X-Shopify-Shop-Api-Call-Limit": "a/b"}, None, id="shopify-bad"),
        pytest.param({}, None, id="none"),
    ],
)
def test_header_pause_s_reads_provider_headers(
    headers: dict[str, str], expected: float | None
) -> None:
    assert header_pause_s(headers, NOW) == expected


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(4, burst=2, clock=lambda: now[0])

    waits = [bucket.reserve() for _ in range(4)]
    now[0] = 10.0
    rested = bucket.reserve()

    assert waits == [0.0, 0.0, 0.25, 0.5]
    assert rested == 0.0


def test_token_bucket_bad_rate_is_config_error() -> None:
    with pytest.raises(ConfigError, match="rate > 0"):
        TokenBucket(0)


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        pytest.param("GET", {}, True, id="get"),
        pytest.param("delete", {}, True, id="delete-lower-case"),
        pytest.param("POST", {}, False, id="post"),
        pytest.param("POST", {"Idempotency-Key": "k"}, True, id="post-with-key"),
        pytest.param("PATCH", {"idempotency-key": "k"}, True, id="patch-with-key"),
    ],
)
def test_retry_policy_retries_only_what_is_safe(
    method: str, headers: dict[str, str], expected: bool
) -> None:
    assert RetryPolicy().retries(method, headers) is expected


def test_retry_policy_backoff_is_full_jitter_under_the_cap() -> None:
    policy = RetryPolicy(base_s=1, cap_s=4)
    rng = random.Random(1)

    waits = [policy.backoff_s(attempt, rng) for attempt in (1, 2, 3, 4, 5) * 50]

    assert max(waits[0::5]) <= 1 and max(waits[2::5]) <= 4 and max(waits[4::5]) <= 4
    assert max(waits[4::5]) > 2  # the ceiling grew, and the draw uses the range


def test_retry_policy_bad_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="max_attempts >= 1"):
        RetryPolicy(max_attempts=0)


def test_parse_link_header_with_attributes_and_several_relations() -> None:
    value = (
        '<https://api.example.com/v1/orders?page=2>; rel="next"; title="Page 2", '
        "<https://api.example.com/v1/orders?page=9>; rel=last, "
        '<https://api.example.com/v1/orders?page=1>; title="a; b"; rel="first prev"'
    )

    links = parse_link_header(value)

    assert links == {
        "next": "https://api.example.com/v1/orders?page=2",
        "last": "https://api.example.com/v1/orders?page=9",
        "first": "https://api.example.com/v1/orders?page=1",
        "prev": "https://api.example.com/v1/orders?page=1",
    }


def _answer(body: object, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "https://api.example.com/v1/list?page=1")
    return httpx.Response(200, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("style", "answer", "error"),
    [
        pytest.param(Cursor(), _answer({"data": []}), '"has_more"', id="cursor"),
        pytest.param(NextLink(), _answer({"next": None}), '"results"', id="next-link"),
        pytest.param(LinkHeader(items="data"), _answer([]), '"data"', id="link"),
        pytest.param(PageNumber(), _answer({"data": []}), "not a list", id="page"),
        pytest.param(
            Offset(total="count"),
            _answer({"results": [{}] * 100}),
            '"count"',
            id="offset",
        ),
        pytest.param(
            Cursor(),
            _answer({"data": [1], "has_more": False}),
            "other than objects",
            id="items-not-objects",
        ),
    ],
)
def test_page_missing_envelope_field_raises_naming_it(
    style: Cursor | NextLink | LinkHeader | PageNumber | Offset,
    answer: httpx.Response,
    error: str,
) -> None:
    with pytest.raises(ApiResponseError, match=error) as caught:
        style.read(answer, {})

    assert caught.value.request.url.path == "/v1/list"
    assert "walk stopped" in str(caught.value)


def test_cursor_reads_stripes_real_list_envelope(shared_data: Path) -> None:
    """Stripe's published list-events page continues after its last event id."""
    body = json.loads(
        (shared_data / "delivery_logs/stripe_list_events.json").read_text()
    )

    page = Cursor().read(_answer(body), {"limit": "3"})

    assert len(page.items) == len(body["data"])
    assert page.next_params == {"limit": "3", "starting_after": body["data"][-1]["id"]}
