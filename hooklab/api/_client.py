"""A small provider API client: one httpx.Client, a call log and cursor pagination.

Every request is logged as one ``api.request`` line and kept as a ``CallRecord`` for
the audit. A failed request raises ``ApiRequestError`` carrying the request; a page walk
never ends early as if it were complete.

Issue 5 will add authentication, retries with backoff, rate-limit handling and the
other pagination styles (page numbers, Link headers, offsets).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from hooklab.errors import ApiError

__all__ = ["DEFAULT_TIMEOUT", "ApiRequestError", "CallRecord", "Client"]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(connect=5, read=10, write=10, pool=5)


@dataclass(frozen=True)
class CallRecord:
    """One API call as the audit sees it; ``status`` is None when no answer came."""

    method: str
    route: str
    status: int | None
    attempt: int
    latency_s: float
    bytes: int


class ApiRequestError(ApiError):
    """An API request failed; ``request`` and ``status_code`` say which and how."""

    def __init__(
        self, message: str, *, request: httpx.Request, status_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.request = request
        self.status_code = status_code


class Client:
    """A thin, logged wrapper around ``httpx.Client`` for one provider's API."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )
        self.calls: list[CallRecord] = []

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def get_json(self, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        """GET ``path`` and return the decoded JSON body; raise ApiRequestError."""
        response = self.request("GET", path, params=params)

        try:
            return response.json()
        except ValueError:
            raise ApiRequestError(
                f"GET {_where(response.request)} answered a body that is not JSON.",
                request=response.request,
                status_code=response.status_code,
            ) from None

    def request(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send one request, record it, and raise ApiRequestError unless it is 2xx."""
        request = self._http.build_request(method, path, params=params)
        started = time.perf_counter()

        try:
            response = self._http.send(request)
        except httpx.HTTPError as exc:
            self._record(request, None, started, 0)
            raise ApiRequestError(
                f"{method} {_where(request)} failed: {type(exc).__name__}: {exc}",
                request=request,
            ) from exc

        self._record(request, response.status_code, started, len(response.content))
        if not response.is_success:
            raise ApiRequestError(
                f"{method} {_where(request)} answered HTTP {response.status_code}.",
                request=request,
                status_code=response.status_code,
            )
        return response

    def iter_pages(
        self,
        path: str,
        *,
        cursor_param: str = "after",
        limit: int = 100,
        cursor: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield each page's ``data`` list, following ``has_more`` and the last id.

        ``cursor`` resumes after a known id. A failed or malformed page raises
        ApiRequestError; the walk never stops early as if it were complete.
        """
        while True:
            params = {"limit": str(limit)}
            if cursor is not None:
                params[cursor_param] = cursor

            data, has_more, request = self._page(path, params)
            yield data

            if not has_more:
                return
            cursor = _last_id(data, request)

    def _page(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], bool, httpx.Request]:
        response = self.request("GET", path, params=params)

        try:
            page = response.json()
            data, has_more = page["data"], page["has_more"]
        except (ValueError, TypeError, KeyError):
            data, has_more = None, None
        if not isinstance(data, list) or not isinstance(has_more, bool):
            raise ApiRequestError(
                f"GET {_where(response.request)} did not answer a page "
                '({"data": [...], "has_more": bool}); the walk stopped there.',
                request=response.request,
                status_code=response.status_code,
            )
        return data, has_more, response.request

    def _record(
        self, request: httpx.Request, status: int | None, started: float, size: int
    ) -> None:
        record = CallRecord(
            method=request.method,
            route=request.url.path,
            status=status,
            attempt=1,
            latency_s=time.perf_counter() - started,
            bytes=size,
        )
        self.calls.append(record)
        logger.info(
            "api.request",
            extra={"method": record.method, "route": record.route, "status": status},
        )


def _last_id(data: list[dict[str, Any]], request: httpx.Request) -> str:
    """The cursor for the next page: the id of this page's last item."""
    last = data[-1] if data else None
    if not isinstance(last, dict) or not isinstance(last.get("id"), str):
        raise ApiRequestError(
            f"GET {_where(request)} said has_more but its last item has no string "
            "id to continue from; the walk stopped there.",
            request=request,
        )
    return str(last["id"])


def _where(request: httpx.Request) -> str:
    """The URL without its query, which may carry credentials."""
    return str(request.url.copy_with(query=None))
