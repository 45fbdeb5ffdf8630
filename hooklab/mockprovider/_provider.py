"""A mock SaaS provider on loopback: an events API plus signed webhooks.

Events are created through a control endpoint, listed through a cursor-paginated API
(oldest first, like most "list events" endpoints) and, when a webhook target is set,
pushed to it as signed webhooks by ``hooklab.sender``. Every API request is counted and
every webhook attempt kept, so a study can compare the cost of polling and pushing.

Endpoints:

- ``POST /_control/events`` with ``{"type": str, "data": {...}}`` creates an event;
- ``GET /v1/events?after=<id>&limit=<1..100>`` lists events after a cursor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hooklab.sender import Attempt, deliver

__all__ = ["MAX_PAGE_SIZE", "MockProvider"]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100


class _BadRequest(Exception):
    """A request the API answers with 400 and this message."""


class MockProvider:
    """An in-memory, thread-safe event store served as a small provider API."""

    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        scheme: str = "standard-webhooks",
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.scheme = scheme
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []
        self._positions: dict[str, int] = {}
        self._api_calls = 0
        self._attempts: list[Attempt] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.app = self._build_app()

    def __repr__(self) -> str:
        secret = "<hidden>" if self.webhook_secret else None
        return (
            f"MockProvider(webhook_url={self.webhook_url!r}, webhook_secret={secret}, "
            f"scheme={self.scheme!r}, events={len(self._events)})"
        )

    @property
    def api_calls(self) -> int:
        """How many API requests (``/v1/...``) the provider has answered."""
        with self._lock:
            return self._api_calls

    @property
    def attempts(self) -> list[Attempt]:
        """A copy of the webhook attempts made so far, in completion order."""
        with self._lock:
            return list(self._attempts)

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of every event created so far, oldest first."""
        with self._lock:
            return [dict(event) for event in self._events]

    def create_event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new event and return it (without sending any webhook)."""
        with self._lock:
            event_id = f"evt_{len(self._events) + 1:08d}"
            event = {
                "id": event_id,
                "type": event_type,
                "created": time.time(),
                "data": data,
            }
            self._positions[event_id] = len(self._events)
            self._events.append(event)
        return dict(event)

    def page(self, after: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Return up to ``limit`` events after the id ``after``, and if more exist.

        Raises ValueError when ``after`` names no event.
        """
        with self._lock:
            if after is not None and after not in self._positions:
                raise ValueError(f"after names no known event: {after!r}.")
            start = 0 if after is None else self._positions[after] + 1
            chosen = self._events[start : start + limit]
            has_more = start + limit < len(self._events)
        return [dict(event) for event in chosen], has_more

    def _build_app(self) -> Starlette:
        routes = [
            Route("/_control/events", self._control_create, methods=["POST"]),
            Route("/v1/events", self._list_events, methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Built now, not on the first webhook: building a client takes tens of
        # milliseconds, which would otherwise stall the first control call.
        self._client = httpx.AsyncClient()
        yield
        await self.drain()

    async def drain(self) -> None:
        """Wait for pending webhook deliveries, then close the HTTP client."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _control_create(self, request: Request) -> JSONResponse:
        try:
            event_type, data = _parse_control(await request.body())
            self._check_webhook_config()
        except _BadRequest as exc:
            return _bad_request(str(exc))

        event = self.create_event(event_type, data)
        if self.webhook_url:
            self._schedule_webhook(event)
        return JSONResponse(event, status_code=201)

    async def _list_events(self, request: Request) -> JSONResponse:
        with self._lock:
            self._api_calls += 1

        try:
            after, limit = _parse_list_query(request)
            events, has_more = self.page(after, limit)
        except (_BadRequest, ValueError) as exc:
            return _bad_request(str(exc))

        return JSONResponse({"data": events, "has_more": has_more})

    def _check_webhook_config(self) -> None:
        if self.webhook_url and not self.webhook_secret:
            raise _BadRequest(
                "A webhook_url is set but no webhook_secret to sign with."
            )

    def _schedule_webhook(self, event: dict[str, Any]) -> None:
        """Send the webhook in the background; the control call does not wait."""
        task = asyncio.get_running_loop().create_task(self._send_webhook(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_webhook(self, event: dict[str, Any]) -> None:
        url, secret = self.webhook_url, self.webhook_secret
        if not url or not secret:
            return

        if self._client is None:
            self._client = httpx.AsyncClient()
        body = json.dumps(_envelope(event)).encode()

        attempt = await deliver(
            self._client,
            url,
            body,
            scheme=self.scheme,
            secret=secret,
            msg_id=event["id"],
        )
        with self._lock:
            self._attempts.append(attempt)


def _envelope(event: dict[str, Any]) -> dict[str, Any]:
    """The Standard Webhooks body: type, ISO timestamp and the event's data."""
    created = datetime.fromtimestamp(event["created"], tz=UTC)
    return {
        "type": event["type"],
        "timestamp": created.isoformat().replace("+00:00", "Z"),
        "data": event["data"],
    }


def _parse_list_query(request: Request) -> tuple[str | None, int]:
    after = request.query_params.get("after") or None
    raw_limit = request.query_params.get("limit", str(MAX_PAGE_SIZE))

    digits = raw_limit.isascii() and raw_limit.isdigit()
    if not digits or not 1 <= int(raw_limit) <= MAX_PAGE_SIZE:
        raise _BadRequest(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}; got {raw_limit!r}."
        )
    return after, int(raw_limit)


def _parse_control(body: bytes) -> tuple[str, dict[str, Any]]:
    try:
        request = json.loads(body)
    except ValueError:
        raise _BadRequest("The body must be JSON.") from None

    if not isinstance(request, dict) or not isinstance(request.get("type"), str):
        raise _BadRequest('The body must be {"type": <string>, "data": <object>}.')
    data = request.get("data", {})
    if not isinstance(data, dict):
        raise _BadRequest('"data" must be a JSON object.')
    return request["type"], data


def _bad_request(message: str) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_request", "message": message}, status_code=400
    )
