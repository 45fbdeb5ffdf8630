"""The API client's decisions, shared by ``Client`` and ``AsyncClient``; no I/O.

``_Core`` decides how a request is built and authenticated, whether a failed
attempt is tried again and after how long, what the call log records and which
error is raised. The clients in ``_client`` only send, sleep and walk pages.
"""

from __future__ import annotations

import base64
import logging
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from json import dumps as json_dumps
from typing import Any, NoReturn
from urllib.parse import quote

import httpx

from hooklab.api._auth import Auth, Credentials, OAuth2
from hooklab.api._errors import ApiAuthError, ApiRequestError, ApiResponseError, where
from hooklab.api._limits import (
    IDEMPOTENT_METHODS,
    RetryPolicy,
    TokenBucket,
    header_pause_s,
    retry_after_s,
)
from hooklab.api._pagination import Page
from hooklab.errors import ConfigError

__all__ = ["DEFAULT_TIMEOUT", "CallRecord"]

logger = logging.getLogger(__name__)

#: Explicit limits, never the HTTP library's defaults: 5 s to connect, 10 s to read.
DEFAULT_TIMEOUT = httpx.Timeout(connect=5, read=10, write=10, pool=5)

# Failures where the request never left the client: safe to retry for any method.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class CallRecord:
    """One attempt as the audit sees it; ``status`` is None when no answer came.

    ``route`` is the template (``/v1/orders/{id}``), never a filled-in URL.
    ``queued_s`` is how long the client held the attempt back (its own rate limit
    or the provider's headers); ``retry_after_s`` is what the provider's
    Retry-After said, and ``wait_s`` how long the client then waited before the
    next attempt.
    """

    method: str
    route: str
    status: int | None
    attempt: int
    latency_s: float
    bytes: int
    started_at: float = 0.0
    queued_s: float = 0.0
    retry_after_s: float | None = None
    wait_s: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class _Call:
    """One logical request: everything needed to send it, and send it again."""

    method: str
    route: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None
    retryable: bool


@dataclass(frozen=True)
class _Exchange:
    """One attempt's request and what came back: an answer or an error."""

    request: httpx.Request
    response: httpx.Response | None
    error: httpx.TransportError | None
    started_at: float
    latency_s: float
    queued_s: float


@dataclass(frozen=True)
class _Verdict:
    """Whether to try again, after how long, and what the provider asked for."""

    retry: bool
    wait_s: float = 0.0
    retry_after_s: float | None = None
    reason: str = ""


@dataclass
class _Progress:
    """Where one logical request stands across its attempts."""

    attempt: int = 0
    failures: int = 0
    refreshed: bool = False
    stale: str | None = None
    exchanges: list[_Exchange] = field(default_factory=list)


class _Core:
    """Everything the sync and async clients share; no I/O happens here."""

    _http: httpx.Client | httpx.AsyncClient

    def __init__(
        self,
        *,
        auth: Auth | None,
        retry: RetryPolicy | None,
        rate_limit: float | None,
        burst: int,
        clock: Callable[[], float],
        rng: random.Random | None,
    ) -> None:
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.bucket = (
            TokenBucket(rate_limit, burst, clock=clock) if rate_limit else None
        )
        self.calls: list[CallRecord] = []
        self._clock = clock
        self._rng = rng or random.Random()
        self._paused_until = 0.0

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={str(self._http.base_url)!r}, "
            f"auth={self.auth!r}, retry={self.retry!r}, bucket={self.bucket!r})"
        )

    def _prepare(
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
        url: str | None = None,
    ) -> _Call:
        """Fix the request once, so every attempt sends the same body and key."""
        method = method.upper()
        sent_headers = dict(headers or {})
        keyed = any(name.lower() == "idempotency-key" for name in sent_headers)
        if idempotent and method not in IDEMPOTENT_METHODS and not keyed:
            sent_headers["Idempotency-Key"] = uuid.uuid4().hex

        body = content
        if json is not None:
            body = json_dumps(json, separators=(",", ":")).encode()
            sent_headers.setdefault("Content-Type", "application/json")
        return _Call(
            method=method,
            route=route,
            url=url or _fill(route, path_params or {}),
            params=dict(params or {}),
            headers=sent_headers,
            content=body,
            retryable=self.retry.retries(method, sent_headers),
        )

    def _build(self, call: _Call, token: str | None) -> httpx.Request:
        credentials = self._credentials(token)

        return self._http.build_request(
            call.method,
            call.url,
            params={**call.params, **credentials.params} or None,
            headers={**call.headers, **credentials.headers},
            content=call.content,
        )

    def _credentials(self, token: str | None) -> Credentials:
        if isinstance(self.auth, OAuth2):
            return OAuth2.credentials_for(token or "")
        if self.auth is None:
            return Credentials()
        return self.auth.credentials()

    def _queue_s(self) -> float:
        """How long to hold the next attempt: own rate limit, then provider's pause."""
        own = self.bucket.reserve() if self.bucket else 0.0
        told = self._paused_until - self._clock()
        return max(own, told, 0.0)

    def _refreshes(self, exchange: _Exchange, progress: _Progress) -> bool:
        """Whether a 401 should refresh the OAuth token and resend, once."""
        status = exchange.response.status_code if exchange.response else None
        return (
            status == 401 and isinstance(self.auth, OAuth2) and not progress.refreshed
        )

    def _verdict(self, call: _Call, exchange: _Exchange, failures: int) -> _Verdict:
        """Decide whether this attempt is tried again, and after how long."""
        response, error = exchange.response, exchange.error
        if response is not None:
            self._note_limits(response)
        if failures + 1 >= self.retry.max_attempts:
            return _Verdict(False)

        if error is not None:
            if not (call.retryable or isinstance(error, _NOT_SENT)):
                return _Verdict(False, reason="not safe to send twice")
            return self._backoff(failures, type(error).__name__)
        if response is None or response.status_code not in self.retry.statuses:
            return _Verdict(False)
        if not call.retryable:
            return _Verdict(False, reason="not safe to send twice")
        return self._told_or_backoff(call, response, failures)

    def _told_or_backoff(
        self, call: _Call, response: httpx.Response, failures: int
    ) -> _Verdict:
        """Wait as Retry-After (or the rate-limit headers) say, else back off."""
        reason = f"HTTP {response.status_code}"
        raw = response.headers.get("retry-after")
        told = retry_after_s(raw, time.time())
        if told is None and response.status_code == 429:
            told = header_pause_s(response.headers, time.time())
        if told is None:
            return self._backoff(failures, reason)

        wait = self._clamp(call, told, raw)
        return _Verdict(True, wait_s=wait, retry_after_s=told, reason=reason)

    def _clamp(self, call: _Call, told: float, raw: str | None) -> float:
        """Keep a provider's wait within 0 and ``max_wait_s``; log when it was not."""
        wait = min(max(told, 0.0), self.retry.max_wait_s)
        if wait != told:
            logger.warning(
                "api.retry_after_clamped",
                extra={
                    "route": call.route,
                    "value": raw,
                    "asked_s": told,
                    "wait_s": wait,
                },
            )
        return wait

    def _backoff(self, failures: int, reason: str) -> _Verdict:
        wait = self.retry.backoff_s(failures + 1, self._rng)
        return _Verdict(True, wait_s=wait, reason=reason)

    def _note_limits(self, response: httpx.Response) -> None:
        """Hold later requests back as the provider's rate-limit headers ask."""
        pause = header_pause_s(response.headers, time.time())
        if pause is None or pause <= 0:
            return

        pause = min(pause, self.retry.max_wait_s)
        self._paused_until = max(self._paused_until, self._clock() + pause)
        logger.info("api.paused", extra={"pause_s": pause})

    def _record(
        self, call: _Call, exchange: _Exchange, attempt: int, verdict: _Verdict
    ) -> None:
        response = exchange.response
        status = None if response is None else response.status_code
        error = None if exchange.error is None else type(exchange.error).__name__
        record = CallRecord(
            method=call.method,
            route=call.route,
            status=status,
            attempt=attempt,
            latency_s=exchange.latency_s,
            bytes=0 if response is None else len(response.content),
            started_at=exchange.started_at,
            queued_s=exchange.queued_s,
            retry_after_s=verdict.retry_after_s,
            wait_s=verdict.wait_s if verdict.retry else 0.0,
            error=error,
        )
        self.calls.append(record)
        _log(record, verdict)

    def _settle(self, call: _Call, exchange: _Exchange, attempt: int) -> httpx.Response:
        """Return a 2xx answer; raise ApiRequestError for anything else."""
        response = exchange.response
        if response is not None and response.is_success:
            return response

        request = exchange.request
        tries = f"after {attempt} attempt{'s' if attempt > 1 else ''}"
        if response is None:
            raise ApiRequestError(
                f"{call.method} {where(request)} failed {tries}: "
                f"{type(exchange.error).__name__}: {exchange.error}",
                request=request,
            ) from exchange.error
        raise ApiRequestError(
            f"{call.method} {where(request)} answered HTTP {response.status_code} "
            f"{tries}.",
            request=request,
            status_code=response.status_code,
            response=response,
        )

    def _page_call(
        self,
        page: Page | None,
        first: _Call,
        previous: httpx.Request | None,
    ) -> _Call:
        """The call for the page after ``page`` (or the first call)."""
        if page is None:
            return first
        if page.next_url is None:
            return replace(first, params=dict(page.next_params or {}))

        assert previous is not None
        _check_same_origin(page.next_url, previous)
        return replace(first, url=page.next_url, params={})

    def _token_request(self, form: Mapping[str, str]) -> httpx.Request:
        assert isinstance(self.auth, OAuth2)
        user, secret = self.auth.basic_auth
        basic = base64.b64encode(f"{quote(user)}:{quote(secret)}".encode()).decode()

        return self._http.build_request(
            "POST",
            self.auth.token_url,
            data=dict(form),
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )

    def _token_answer(self, exchange: _Exchange) -> Mapping[str, Any]:
        """The token endpoint's JSON answer, or ApiAuthError saying what went wrong."""
        route = exchange.request.url.path
        call = _Call("POST", route, route, {}, {}, None, retryable=False)
        self._record(call, exchange, 1, _Verdict(False))
        request, response = exchange.request, exchange.response

        if response is None:
            raise ApiAuthError(
                f"The token endpoint {where(request)} could not be reached: "
                f"{type(exchange.error).__name__}.",
                request=request,
            ) from exchange.error
        answer = _token_json(response)
        if not response.is_success or not isinstance(answer.get("access_token"), str):
            raise _token_refused(request, response, answer)
        return answer


def _fill(route: str, path_params: Mapping[str, str]) -> str:
    """Fill ``{name}`` placeholders, each value quoted as one path segment."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in path_params:
            raise ConfigError(
                f"The route {route!r} needs path_params[{name!r}]; it was not given."
            )
        return quote(str(path_params[name]), safe="")

    return _PLACEHOLDER.sub(value, route)


def _check_same_origin(link: str, page: httpx.Request) -> None:
    """Refuse a next link to another host: it would receive the credentials."""
    target = httpx.URL(link)
    if (target.scheme, target.host, target.port) == (
        page.url.scheme,
        page.url.host,
        page.url.port,
    ):
        return
    raise ApiResponseError(
        f"GET {where(page)} gave a next-page link to another origin "
        f"({target.scheme}://{target.host}); it was not followed, so the "
        "credentials stay with the API.",
        request=page,
    )


def _token_json(response: httpx.Response) -> Mapping[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _token_refused(
    request: httpx.Request, response: httpx.Response, answer: Mapping[str, Any]
) -> NoReturn:
    code = answer.get("error")
    said = f" ({code})" if isinstance(code, str) and code.isidentifier() else ""
    hint = (
        " A refresh token is often single-use: one already spent is refused."
        if said == " (invalid_grant)"
        else ""
    )
    raise ApiAuthError(
        f"The token endpoint {where(request)} answered HTTP {response.status_code}"
        f"{said} without an access_token.{hint}",
        request=request,
        status_code=response.status_code,
        response=response,
    )


def _log(record: CallRecord, verdict: _Verdict) -> None:
    logger.info(
        "api.request",
        extra={
            "method": record.method,
            "route": record.route,
            "status": record.status,
            "attempt": record.attempt,
            "latency_s": round(record.latency_s, 4),
        },
    )
    if verdict.retry:
        logger.warning(
            "api.retry",
            extra={
                "route": record.route,
                "attempt": record.attempt,
                "reason": verdict.reason or "token refreshed",
                "wait_s": round(verdict.wait_s, 3),
            },
        )
