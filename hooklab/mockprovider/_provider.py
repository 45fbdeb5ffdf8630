"""A mock SaaS provider on loopback: a REST API that misbehaves on demand, and webhooks.

Events, orders and invoices live in memory. The API serves them in several
pagination styles, behind an optional OAuth 2.0 token endpoint and rate limit,
with slow answers, 5xx and malformed bodies injected at random or one by one.
When a webhook target is set, every new event is also pushed to it, signed, by
``hooklab.sender``; ``emit`` pushes many at once with the sender's fault
injection (dropped and duplicated deliveries).

Endpoints (``/v1/...`` are the API: counted, rate-limited, faulted, authorised):

- ``POST /_control/events`` with ``{"type": str, "data": {...}}`` creates an event;
- ``GET /v1/events?starting_after=<id>&limit=<1..100>&created_since=<unix time>``
  lists events oldest first by cursor (``after`` is accepted for
  ``starting_after``), as ``{"data": [...], "has_more": bool}``;
- ``GET /v1/orders?page=<n>&per_page=<1..100>`` answers a bare list with a
  ``Link`` header (``first``, ``prev``, ``next``, ``last``), as GitHub does;
- ``POST /v1/orders`` creates an order; an ``Idempotency-Key`` makes a repeat
  answer the first result (``Idempotent-Replayed: true``) without a second order;
- ``GET /v1/invoices?offset=<n>&limit=<1..100>`` answers
  ``{"results": [...], "count": n, "next": url | null}``;
- ``GET /v1/orders/{id}`` and ``GET /v1/invoices/{id}`` fetch one object;
- ``POST /oauth/token``: client credentials and single-use refresh tokens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hooklab.mockprovider._guards import (
    ApiFaults,
    Fault,
    Faults,
    Limiter,
    OAuthConfig,
    RateLimit,
    TokenError,
    TokenStore,
)
from hooklab.mockprovider._store import Conflict, Store
from hooklab.sender import Attempt, Schedule, deliver, simulate
from hooklab.sender import Faults as WebhookFaults

__all__ = ["MAX_PAGE_SIZE", "ApiHit", "MockProvider", "webhook_body"]

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 100

Endpoint = Callable[[Request], Awaitable[Response]]


class _BadRequest(Exception):
    """A request the API answers with 400 and this message."""


@dataclass(frozen=True)
class ApiHit:
    """One API request as the provider saw it (for tests and the lab's counts)."""

    method: str
    path: str
    status: int
    at: float
    idempotency_key: str | None = None
    body: bytes = b""


class MockProvider:
    """An in-memory, thread-safe provider served as a REST API with webhooks.

    ``rate_limit`` (a ``RateLimit`` or requests a second), ``oauth`` and
    ``faults`` are off by default, which keeps the API open, fast and well-behaved.
    ``clock`` (monotonic) drives the rate limit and token expiry.
    """

    def __init__(
        self,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        scheme: str = "standard-webhooks",
        *,
        rate_limit: RateLimit | float | None = None,
        oauth: OAuthConfig | None = None,
        faults: ApiFaults | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.scheme = scheme
        self._clock = clock
        self._store = Store()
        self._limiter = _limiter(rate_limit, clock)
        self._tokens = None if oauth is None else TokenStore(oauth, clock)
        self._faults = Faults(faults)
        self._lock = threading.Lock()
        self._hits: list[ApiHit] = []
        self._attempts: list[Attempt] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.app = self._build_app()

    def __repr__(self) -> str:
        secret = "<hidden>" if self.webhook_secret else None
        return (
            f"MockProvider(webhook_url={self.webhook_url!r}, webhook_secret={secret}, "
            f"scheme={self.scheme!r}, events={len(self._store.events)})"
        )

    @property
    def api_calls(self) -> int:
        """How many API requests (``/v1/...``) the provider has answered."""
        with self._lock:
            return len(self._hits)

    @property
    def hits(self) -> list[ApiHit]:
        """A copy of every API request, in the order they were answered."""
        with self._lock:
            return list(self._hits)

    @property
    def attempts(self) -> list[Attempt]:
        """A copy of the webhook attempts made so far, in completion order."""
        with self._lock:
            return list(self._attempts)

    @property
    def events(self) -> list[dict[str, Any]]:
        """A copy of every event created so far, oldest first."""
        return self._store.events

    @property
    def token_grants(self) -> list[str]:
        """The grant type of every token request, in order (empty without OAuth)."""
        return [] if self._tokens is None else list(self._tokens.grants)

    def create_event(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Store a new event and return it (without sending any webhook)."""
        return self._store.create_event(event_type, data)

    def create_order(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Store a new order and its ``order.created`` event (no webhook)."""
        return self._store.create("order", fields)

    def create_invoice(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Store a new invoice and its ``invoice.created`` event (no webhook)."""
        return self._store.create("invoice", fields)

    def count(self, kind: str) -> int:
        """How many orders or invoices exist (``"order"`` or ``"invoice"``)."""
        return self._store.count(kind)

    def page(
        self, after: str | None, limit: int, since: float | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` events after ``after`` (created at ``since`` or later).

        Raises ValueError when ``after`` names no event.
        """
        return self._store.page(after, limit, since)

    def inject(
        self,
        status: int | None = None,
        *,
        delay_s: float = 0.0,
        body: bytes | None = None,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
        count: int = 1,
    ) -> None:
        """Make the next ``count`` API requests wait ``delay_s`` and/or fail.

        With ``status`` None they are served normally after the delay; otherwise
        answered ``status`` with ``body`` (a JSON error by default) and ``headers``.
        """
        fault = Fault(status, delay_s, body, content_type, dict(headers or {}))
        self._faults.add(fault, count)

    def issue_refresh_token(self) -> str:
        """A refresh token the token endpoint accepts once (needs ``oauth``)."""
        return self._oauth().issue_refresh_token()

    def expire_tokens(self) -> None:
        """Make every access token issued so far invalid, as if it had expired."""
        self._oauth().expire_all()

    async def emit(
        self,
        events: Sequence[dict[str, Any]] | None = None,
        *,
        faults: WebhookFaults | None = None,
        schedule: Schedule | None = None,
        concurrency: int = 8,
    ) -> list[Attempt]:
        """Push ``events`` (default: all) as webhooks through ``hooklab.sender``.

        ``faults`` drops and duplicates deliveries; ``schedule`` sets the retries
        (default: a single attempt, so a dropped delivery stays lost).
        """
        url, secret = self._webhook_target()
        chosen = self.events if events is None else list(events)
        bodies = [(event["id"], webhook_body(event)) for event in chosen]

        attempts = await simulate(
            url,
            bodies,
            scheme=self.scheme,
            secret=secret,
            schedule=schedule or Schedule((), response_timeout_s=15.0),
            faults=faults,
            concurrency=concurrency,
        )
        with self._lock:
            self._attempts.extend(attempts)
        return attempts

    async def drain(self) -> None:
        """Wait for pending webhook deliveries, then close the HTTP client."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _oauth(self) -> TokenStore:
        if self._tokens is None:
            raise RuntimeError("This MockProvider was built without oauth=.")
        return self._tokens

    def _webhook_target(self) -> tuple[str, str]:
        if not self.webhook_url or not self.webhook_secret:
            raise RuntimeError("Set webhook_url and webhook_secret before emitting.")
        return self.webhook_url, self.webhook_secret

    def _build_app(self) -> Starlette:
        api = self._guarded
        routes = [
            Route("/_control/events", self._control_create, methods=["POST"]),
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/v1/events", api(self._list_events), methods=["GET"]),
            Route("/v1/orders", api(self._list_orders), methods=["GET"]),
            Route("/v1/orders", api(self._create_order), methods=["POST"]),
            Route("/v1/orders/{id}", api(self._get_order), methods=["GET"]),
            Route("/v1/invoices", api(self._list_invoices), methods=["GET"]),
            Route("/v1/invoices/{id}", api(self._get_invoice), methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=self._lifespan)

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Built now, not on the first webhook: building a client takes tens of
        # milliseconds, which would otherwise stall the first control call.
        self._client = httpx.AsyncClient()
        yield
        await self.drain()

    def _guarded(self, handler: Endpoint) -> Endpoint:
        """Wrap an API endpoint: rate limit, injected faults, then authorisation."""

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            response = await self._answer(request, handler)
            self._note(request, response.status_code, body)
            return response

        return endpoint

    async def _answer(self, request: Request, handler: Endpoint) -> Response:
        verdict = self._limiter.take() if self._limiter else None
        if verdict is not None and not verdict.allowed:
            return _error(429, "rate_limited", "Too many requests.", verdict.headers)

        fault = self._faults.next()
        if fault is not None:
            await asyncio.sleep(fault.delay_s)
        response = _faulty(fault) or self._unauthorised(request)
        if response is None:
            try:
                response = await handler(request)
            except _BadRequest as exc:
                response = _error(400, "invalid_request", str(exc))

        response.headers.update(verdict.headers if verdict else {})
        return response

    def _unauthorised(self, request: Request) -> Response | None:
        if self._tokens is None:
            return None

        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self._tokens.valid(token.strip()):
            return None
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return _error(401, "invalid_token", "The access token is invalid.", headers)

    def _note(self, request: Request, status: int, body: bytes) -> None:
        hit = ApiHit(
            method=request.method,
            path=request.url.path,
            status=status,
            at=self._clock(),
            idempotency_key=request.headers.get("idempotency-key"),
            body=body if request.method != "GET" else b"",
        )
        with self._lock:
            self._hits.append(hit)

    async def _control_create(self, request: Request) -> JSONResponse:
        try:
            event_type, data = _parse_control(await request.body())
            self._check_webhook_config()
        except _BadRequest as exc:
            return _bad_request(str(exc))

        event = self.create_event(event_type, data)
        self._push(event)
        return JSONResponse(event, status_code=201)

    async def _list_events(self, request: Request) -> Response:
        query = request.query_params
        after = query.get("starting_after") or query.get("after") or None
        limit = _page_size(query.get("limit"))
        since = _since(query.get("created_since"))

        try:
            events, has_more = self.page(after, limit, since)
        except ValueError as exc:
            raise _BadRequest(str(exc)) from None
        return JSONResponse({"data": events, "has_more": has_more})

    async def _list_orders(self, request: Request) -> Response:
        page = _positive(request.query_params.get("page", "1"), "page")
        size = _page_size(request.query_params.get("per_page"))

        orders, total = self._store.slice("order", (page - 1) * size, size)
        last = max(1, math.ceil(total / size))
        link = _link_header(str(request.url), page, last)
        return JSONResponse(orders, headers={"Link": link} if link else None)

    async def _create_order(self, request: Request) -> Response:
        fields = _parse_object(await request.body())
        key = request.headers.get("idempotency-key")
        if key is None:
            order = self._store.create("order", fields)
            self._push_latest()
            return JSONResponse(order, status_code=201)

        try:
            order, new = self._store.create_once("order", fields, key)
        except Conflict:
            return _error(
                409, "idempotency_error", "This key was used with another body."
            )
        if new:
            self._push_latest()
        replayed = {} if new else {"Idempotent-Replayed": "true"}
        return JSONResponse(order, status_code=201, headers=replayed)

    async def _list_invoices(self, request: Request) -> Response:
        offset = _positive(request.query_params.get("offset", "0"), "offset", low=0)
        limit = _page_size(request.query_params.get("limit"))

        invoices, total = self._store.slice("invoice", offset, limit)
        following = offset + len(invoices)
        next_url = (
            str(request.url.include_query_params(offset=following, limit=limit))
            if following < total
            else None
        )
        return JSONResponse({"results": invoices, "count": total, "next": next_url})

    async def _get_order(self, request: Request) -> Response:
        return _one(self._store.get("order", request.path_params["id"]), "order")

    async def _get_invoice(self, request: Request) -> Response:
        return _one(self._store.get("invoice", request.path_params["id"]), "invoice")

    async def _token(self, request: Request) -> Response:
        store = self._tokens
        if store is None:
            return _error(404, "not_found", "This provider has no OAuth endpoint.")
        await asyncio.sleep(store.config.token_delay_s)

        # Parsed by hand: starlette's request.form() needs python-multipart.
        fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            store.check_client(*_client_credentials(request, fields))
            answer = store.grant(
                fields.get("grant_type", ""), fields.get("refresh_token")
            )
        except TokenError as exc:
            return JSONResponse({"error": exc.error}, status_code=exc.status)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    def _check_webhook_config(self) -> None:
        if self.webhook_url and not self.webhook_secret:
            raise _BadRequest(
                "A webhook_url is set but no webhook_secret to sign with."
            )

    def _push_latest(self) -> None:
        self._push(self._store.events[-1])

    def _push(self, event: dict[str, Any]) -> None:
        """Send the webhook in the background; the API call does not wait."""
        if not self.webhook_url or not self.webhook_secret:
            return
        task = asyncio.get_running_loop().create_task(self._send_webhook(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_webhook(self, event: dict[str, Any]) -> None:
        url, secret = self.webhook_url, self.webhook_secret
        if not url or not secret:
            return

        if self._client is None:
            self._client = httpx.AsyncClient()
        attempt = await deliver(
            self._client,
            url,
            webhook_body(event),
            scheme=self.scheme,
            secret=secret,
            msg_id=event["id"],
        )
        with self._lock:
            self._attempts.append(attempt)


def webhook_body(event: Mapping[str, Any]) -> bytes:
    """The webhook body of ``event``: Standard Webhooks' type, timestamp and data.

    The event id travels in the ``webhook-id`` header, not in the body.
    """
    created = datetime.fromtimestamp(event["created"], tz=UTC)
    envelope = {
        "type": event["type"],
        "timestamp": created.isoformat().replace("+00:00", "Z"),
        "data": event["data"],
    }
    return json.dumps(envelope).encode()


def _limiter(
    rate_limit: RateLimit | float | None, clock: Callable[[], float]
) -> Limiter | None:
    if rate_limit is None:
        return None
    limit = rate_limit if isinstance(rate_limit, RateLimit) else RateLimit(rate_limit)
    return Limiter(limit, clock)


def _faulty(fault: Fault | None) -> Response | None:
    if fault is None or fault.status is None:
        return None
    body = fault.body
    if body is None:
        body = json.dumps({"error": "injected", "message": "Fault injection."}).encode()
    return Response(
        body,
        status_code=fault.status,
        media_type=fault.content_type,
        headers=dict(fault.headers),
    )


def _link_header(url: str, page: int, last: int) -> str:
    """A GitHub-style Link header, each link with an extra ``title`` attribute."""
    base = httpx.URL(url)
    wanted = {"first": 1, "last": last}
    if page > 1:
        wanted["prev"] = page - 1
    if page < last:
        wanted["next"] = page + 1

    return ", ".join(
        f'<{base.copy_merge_params({"page": str(number)})}>; rel="{rel}"; '
        f'title="Page {number}"'
        for rel, number in wanted.items()
    )


def _client_credentials(request: Request, form: Mapping[str, str]) -> tuple[str, str]:
    """The client id and secret, from HTTP Basic or from the form."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, secret = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            raise TokenError(401, "invalid_client") from None
        return unquote(user), unquote(secret)
    return form.get("client_id", ""), form.get("client_secret", "")


def _one(found: dict[str, Any] | None, kind: str) -> Response:
    if found is None:
        return _error(404, "not_found", f"No {kind} has this id.")
    return JSONResponse(found)


def _page_size(raw: str | None) -> int:
    text = raw if raw is not None else str(MAX_PAGE_SIZE)
    digits = text.isascii() and text.isdigit()
    if not digits or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise _BadRequest(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}; got {text!r}."
        )
    return int(text)


def _positive(raw: str, name: str, low: int = 1) -> int:
    if not (raw.isascii() and raw.isdigit()) or int(raw) < low:
        raise _BadRequest(f"{name} must be an integer of at least {low}; got {raw!r}.")
    return int(raw)


def _since(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise _BadRequest(
            f"created_since must be a unix time in seconds; got {raw!r}."
        ) from None


def _parse_control(body: bytes) -> tuple[str, dict[str, Any]]:
    request = _parse_object(body)
    if not isinstance(request.get("type"), str):
        raise _BadRequest('The body must be {"type": <string>, "data": <object>}.')
    data = request.get("data", {})
    if not isinstance(data, dict):
        raise _BadRequest('"data" must be a JSON object.')
    return request["type"], data


def _parse_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _BadRequest("The body must be JSON.") from None
    if not isinstance(parsed, dict):
        raise _BadRequest("The body must be a JSON object.")
    return parsed


def _error(
    status: int, error: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "message": message}, status_code=status, headers=headers
    )


def _bad_request(message: str) -> JSONResponse:
    return _error(400, "invalid_request", message)
