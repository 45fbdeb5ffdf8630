"""The provider API client, sync (``Client``) and async (``AsyncClient``).

Both take their decisions from ``_Core`` (``hooklab.api._core``): how a request is
built and authenticated, whether to retry and after how long, what the call log
records. Each class here only sends, sleeps and walks pages, in its own way.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx

from hooklab.api._auth import Auth, OAuth2
from hooklab.api._core import (
    DEFAULT_TIMEOUT,
    _Call,
    _Core,
    _Exchange,
    _Progress,
    _Verdict,
)
from hooklab.api._limits import RetryPolicy
from hooklab.api._pagination import Cursor, Page, Paginator, broken_page, json_body

__all__ = ["AsyncClient", "Client"]


class Client(_Core):
    """A provider's API over ``httpx.Client``: auth, retries, limits, pagination.

    ``timeout`` sets the connect and read limits explicitly; ``retry`` decides
    which failures are retried; ``rate_limit`` (requests a second, in bursts of
    ``burst``) spaces requests before the provider has to refuse any. ``clock``
    and ``sleep`` may be replaced in tests. Every attempt lands in ``calls``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        burst: int = 1,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            auth=auth,
            retry=retry,
            rate_limit=rate_limit,
            burst=burst,
            clock=clock,
            rng=rng,
        )
        self._http = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            headers={"Accept": "application/json", **(headers or {})},
            transport=transport,
        )
        self._sleep = sleep

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        assert isinstance(self._http, httpx.Client)
        self._http.close()

    def request(
        self,
        method: str,
        route: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Send one logical request with retries; return its 2xx answer.

        ``route`` may hold ``{name}`` placeholders filled from ``path_params``;
        the call log keeps the template. ``idempotent=True`` gives a POST (or
        PATCH) an Idempotency-Key, the same on every attempt, so it may be retried.
        """
        call = self._prepare(
            method,
            route,
            path_params=path_params,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotent=idempotent,
        )
        return self._send(call)

    def get_json(
        self,
        route: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``route`` and return its decoded JSON; raise ApiResponseError if none."""
        response = self.request("GET", route, path_params=path_params, params=params)
        return json_body(response)

    def iter_pages(
        self,
        route: str,
        *,
        style: Paginator | None = None,
        params: Mapping[str, str] | None = None,
        path_params: Mapping[str, str] | None = None,
        cursor_param: str = "after",
        limit: int = 100,
        cursor: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's items in any pagination ``style``, to the last page.

        Without ``style`` the list is walked by cursor: ``cursor_param=<last id>``
        while ``has_more``, resuming after ``cursor`` if given. A page that fails
        after its retries, or breaks its style's promise, raises: the walk never
        ends early as if the list were complete.
        """
        paginator = style or Cursor(param=cursor_param, limit=limit)
        first = self._prepare(
            "GET",
            route,
            path_params=path_params,
            params=paginator.first(_resume(params, cursor_param, cursor)),
        )
        page: Page | None = None
        request: httpx.Request | None = None

        read: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        response: httpx.Response | None = None
        while page is None or not page.last:
            call = self._page_call(page, first, request)
            _refuse_loop(read, call, response)
            response = self._send(call)
            request = response.request
            page = paginator.read(response, call.params)
            yield page.items

    def items(
        self,
        route: str,
        *,
        style: Paginator | None = None,
        params: Mapping[str, str] | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield every item of every page, in order (see ``iter_pages``)."""
        for page in self.iter_pages(
            route, style=style, params=params, path_params=path_params
        ):
            yield from page

    def _send(self, call: _Call) -> httpx.Response:
        """Send ``call`` until it succeeds, cannot be retried, or runs out of tries."""
        progress = _Progress()

        while True:
            progress.attempt += 1
            exchange = self._exchange(call, progress.stale)
            if self._refreshes(exchange, progress):
                progress.refreshed, progress.stale = True, _bearer(exchange.request)
                self._record(call, exchange, progress.attempt, _Verdict(True))
                continue

            verdict = self._verdict(call, exchange, progress.failures)
            self._record(call, exchange, progress.attempt, verdict)
            if not verdict.retry:
                return self._settle(call, exchange, progress.attempt)
            progress.failures += 1
            self._pause(verdict.wait_s)

    def _exchange(self, call: _Call, stale: str | None) -> _Exchange:
        queued = self._queue_s()
        self._pause(queued)
        token = self._token(stale)
        request = self._build(call, token)
        return _timed(lambda: self._http_send(request), request, queued, self._clock)

    def _http_send(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(self._http, httpx.Client)
        # Known shortcoming: httpx's read timeout bounds each read, not the whole
        # response, so a server trickling a byte a second holds a call open.
        response = self._http.send(request)
        response.read()
        return response

    def _token(self, stale: str | None) -> str | None:
        if not isinstance(self.auth, OAuth2):
            return None
        return self.auth.token(self._fetch_token, stale=stale)

    def _fetch_token(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        request = self._token_request(form)
        exchange = _timed(lambda: self._http_send(request), request, 0.0, self._clock)
        return self._token_answer(exchange)

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._sleep(seconds)


class AsyncClient(_Core):
    """The same client over ``httpx.AsyncClient``, for one event loop.

    It takes the same arguments as ``Client`` (``sleep`` is a coroutine function
    here) and keeps the same call log; ``iter_pages`` and ``items`` are async
    iterators.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        burst: int = 1,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(
            auth=auth,
            retry=retry,
            rate_limit=rate_limit,
            burst=burst,
            clock=clock,
            rng=rng,
        )
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            headers={"Accept": "application/json", **(headers or {})},
            transport=transport,
        )
        self._sleep = sleep

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying connection pool."""
        assert isinstance(self._http, httpx.AsyncClient)
        await self._http.aclose()

    async def request(
        self,
        method: str,
        route: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Send one logical request with retries; return its 2xx answer."""
        call = self._prepare(
            method,
            route,
            path_params=path_params,
            params=params,
            json=json,
            content=content,
            headers=headers,
            idempotent=idempotent,
        )
        return await self._send(call)

    async def get_json(
        self,
        route: str,
        *,
        path_params: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        """GET ``route`` and return its decoded JSON; raise ApiResponseError if none."""
        response = await self.request(
            "GET", route, path_params=path_params, params=params
        )
        return json_body(response)

    async def iter_pages(
        self,
        route: str,
        *,
        style: Paginator | None = None,
        params: Mapping[str, str] | None = None,
        path_params: Mapping[str, str] | None = None,
        cursor_param: str = "after",
        limit: int = 100,
        cursor: str | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Yield each page's items in any pagination ``style``, to the last page."""
        paginator = style or Cursor(param=cursor_param, limit=limit)
        first = self._prepare(
            "GET",
            route,
            path_params=path_params,
            params=paginator.first(_resume(params, cursor_param, cursor)),
        )
        page: Page | None = None
        request: httpx.Request | None = None

        read: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        response: httpx.Response | None = None
        while page is None or not page.last:
            call = self._page_call(page, first, request)
            _refuse_loop(read, call, response)
            response = await self._send(call)
            request = response.request
            page = paginator.read(response, call.params)
            yield page.items

    async def items(
        self,
        route: str,
        *,
        style: Paginator | None = None,
        params: Mapping[str, str] | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield every item of every page, in order (see ``iter_pages``)."""
        async for page in self.iter_pages(
            route, style=style, params=params, path_params=path_params
        ):
            for item in page:
                yield item

    async def _send(self, call: _Call) -> httpx.Response:
        """Send ``call`` until it succeeds, cannot be retried, or runs out of tries."""
        progress = _Progress()

        while True:
            progress.attempt += 1
            exchange = await self._exchange(call, progress.stale)
            if self._refreshes(exchange, progress):
                progress.refreshed, progress.stale = True, _bearer(exchange.request)
                self._record(call, exchange, progress.attempt, _Verdict(True))
                continue

            verdict = self._verdict(call, exchange, progress.failures)
            self._record(call, exchange, progress.attempt, verdict)
            if not verdict.retry:
                return self._settle(call, exchange, progress.attempt)
            progress.failures += 1
            await self._pause(verdict.wait_s)

    async def _exchange(self, call: _Call, stale: str | None) -> _Exchange:
        queued = self._queue_s()
        await self._pause(queued)
        token = await self._token(stale)
        request = self._build(call, token)
        return await _atimed(self._http_send(request), request, queued, self._clock)

    async def _http_send(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(self._http, httpx.AsyncClient)
        response = await self._http.send(request)
        await response.aread()
        return response

    async def _token(self, stale: str | None) -> str | None:
        if not isinstance(self.auth, OAuth2):
            return None
        return await self.auth.atoken(self._fetch_token, stale=stale)

    async def _fetch_token(self, form: Mapping[str, str]) -> Mapping[str, Any]:
        request = self._token_request(form)
        exchange = await _atimed(self._http_send(request), request, 0.0, self._clock)
        return self._token_answer(exchange)

    async def _pause(self, seconds: float) -> None:
        if seconds > 0:
            await self._sleep(seconds)


def _timed(
    send: Callable[[], httpx.Response],
    request: httpx.Request,
    queued: float,
    clock: Callable[[], float],
) -> _Exchange:
    """Send once and time it; a transport failure is kept, not raised."""
    started = clock()
    try:
        response: httpx.Response | None = send()
        error = None
    except httpx.TransportError as exc:
        response, error = None, exc
    return _Exchange(request, response, error, started, clock() - started, queued)


async def _atimed(
    send: Awaitable[httpx.Response],
    request: httpx.Request,
    queued: float,
    clock: Callable[[], float],
) -> _Exchange:
    """The async twin of ``_timed``."""
    started = clock()
    try:
        response: httpx.Response | None = await send
        error = None
    except httpx.TransportError as exc:
        response, error = None, exc
    return _Exchange(request, response, error, started, clock() - started, queued)


def _refuse_loop(
    read: set[tuple[str, tuple[tuple[str, str], ...]]],
    call: _Call,
    previous: httpx.Response | None,
) -> None:
    """Stop a walk whose next page is one it has read already: the API loops."""
    page = (call.url, tuple(sorted(call.params.items())))
    if page in read and previous is not None:
        raise broken_page(
            previous, "its next page is one already read, so the pagination loops"
        )
    read.add(page)


def _resume(
    params: Mapping[str, str] | None, cursor_param: str, cursor: str | None
) -> dict[str, str]:
    resumed = dict(params or {})
    if cursor is not None:
        resumed[cursor_param] = cursor
    return resumed


def _bearer(request: httpx.Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" else None
