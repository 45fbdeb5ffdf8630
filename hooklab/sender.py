"""The provider simulator: deliver signed webhooks the way a real provider does.

``deliver`` makes one signed attempt. ``simulate`` delivers many events, each
retried on the provider's published schedule (``hooklab.providers``) until a 2xx,
the attempts run out or the give-up time passes, with the provider's response
timeout. ``Faults`` injects what goes wrong on the way: dropped attempts,
duplicated deliveries and reordered events; ``FaultyEndpoint`` wraps an ASGI app to
make the endpoint slow or failing. Every attempt is an ``Attempt``, whose
``to_log`` gives the row a provider's delivery log would show.

Waits between attempts are divided by ``time_scale``, so hours of retries run in
seconds; the response timeout is not, because network time is real time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from hooklab.errors import ConfigError
from hooklab.providers import ProviderPreset
from hooklab.signing import sign
from hooklab.signing.twilio import url_with_body_hash

__all__ = [
    "Attempt",
    "FaultyEndpoint",
    "Faults",
    "Schedule",
    "deliver",
    "simulate",
]

logger = logging.getLogger(__name__)

MAX_LOGGED_RESPONSE = 500


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: the shape of one row of a provider's delivery log.

    ``attempt`` counts from 1 per event; ``trigger`` is ``scheduled`` for the
    provider's own attempts and ``duplicate`` for an injected extra copy.
    """

    msg_id: str
    url: str
    started_at: float
    finished_at: float
    status_code: int | None = None
    error: str | None = None
    attempt: int = 1
    trigger: str = "scheduled"
    response: str = ""
    id: str = field(default_factory=lambda: "atmpt_" + uuid.uuid4().hex[:24])

    @property
    def ok(self) -> bool:
        """Whether the receiver answered with a 2xx status."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def to_log(self) -> dict[str, Any]:
        """This attempt as a row of a delivery log.

        The field names and status codes follow Svix's "list attempts" response
        (``MessageAttemptOut``: status 0 success, 2 fail; triggerType 0 scheduled,
        1 manual), the most detailed published delivery log.
        """
        moment = datetime.fromtimestamp(self.started_at, UTC)
        return {
            "id": self.id,
            "msgId": self.msg_id,
            "url": self.url,
            "response": self.response if self.error is None else self.error,
            "responseStatusCode": self.status_code or 0,
            "responseDurationMs": round((self.finished_at - self.started_at) * 1000),
            "status": 0 if self.ok else 2,
            "statusText": "success" if self.ok else "fail",
            "triggerType": 0 if self.trigger == "scheduled" else 1,
            "timestamp": moment.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True)
class Schedule:
    """When a provider tries again, how long it waits for an answer, when it stops.

    ``retry_delays_s`` are the waits before each retry, after the first attempt.
    """

    retry_delays_s: tuple[float, ...]
    response_timeout_s: float
    give_up_after_s: float | None = None

    @classmethod
    def of(
        cls,
        preset: ProviderPreset,
        *,
        retry_delays_s: Sequence[float] | None = None,
        response_timeout_s: float | None = None,
    ) -> Schedule:
        """The preset's schedule; values it does not publish must be given here."""
        delays = preset.retry_delays_s if retry_delays_s is None else retry_delays_s
        timeout = response_timeout_s or preset.response_timeout_s
        missing = [
            name
            for name, value in (
                ("retry_delays_s", delays),
                ("response_timeout_s", timeout),
            )
            if value is None
        ]
        if missing or delays is None or timeout is None:
            raise ConfigError(
                f"{preset.provider} does not publish its {' and '.join(missing)}; "
                f"pass them explicitly ({preset.notes.get(missing[0], '')})."
            )

        delays = tuple(delays)
        if preset.max_attempts is not None:
            delays = delays[: preset.max_attempts - 1]
        return cls(delays, float(timeout), preset.give_up_after_s)


@dataclass(frozen=True)
class Faults:
    """What goes wrong between provider and endpoint, as shares of attempts.

    ``drop``: an attempt is lost on the way (the provider sees a timeout);
    ``duplicate``: a delivered event is sent once more; ``reorder_window``: events
    are shuffled within windows of this many before they are sent.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder_window: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.drop <= 1 and 0 <= self.duplicate <= 1):
            raise ConfigError(
                f"Fault shares drop and duplicate must be from 0 to 1; got "
                f"{self.drop} and {self.duplicate}."
            )
        if self.reorder_window < 1:
            raise ConfigError(
                f"reorder_window must be 1 or more, got {self.reorder_window}."
            )


async def deliver(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    *,
    scheme: str,
    secret: str,
    msg_id: str,
    timestamp: int | None = None,
    timeout: float = 15.0,
    extra_headers: Mapping[str, str] | None = None,
    attempt: int = 1,
    trigger: str = "scheduled",
) -> Attempt:
    """Sign ``body`` with ``scheme`` and POST it to ``url`` once.

    ``extra_headers`` are sent too; the fresh signature headers win over any of
    them with the same name. Schemes that sign the URL sign ``url`` (twilio-json
    posts to it with the body's bodySHA256 parameter added, as Twilio does).
    """
    started_at = time.time()
    # httpx sends non-ASCII characters percent-encoded: sign the URL as it will
    # travel, which is what a receiver rebuilds from the request it got.
    url = str(httpx.URL(url))
    if scheme == "twilio-json":
        url = url_with_body_hash(url, body)
    try:
        headers = httpx.Headers({"content-type": "application/json"})
        headers.update(extra_headers or {})
        headers.update(
            sign(scheme, secret, body, timestamp=timestamp, msg_id=msg_id, url=url)
        )
        response = await client.post(
            url, content=body, headers=headers, timeout=timeout
        )
    except UnicodeEncodeError:
        # HTTP header values are ASCII: an id such as "evt_é" cannot be sent as
        # the delivery id the signature covers, so this one delivery fails.
        error = "The delivery id holds characters an HTTP header cannot carry."
        logger.warning("webhook.failed", extra={"msg_id": msg_id, "error": error})
        return Attempt(
            msg_id, url, started_at, time.time(), None, error, attempt, trigger
        )
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("webhook.failed", extra={"msg_id": msg_id, "error": error})
        return Attempt(
            msg_id, url, started_at, time.time(), None, error, attempt, trigger
        )

    text = response.text[:MAX_LOGGED_RESPONSE]
    code = response.status_code
    logger.info("webhook.sent", extra={"msg_id": msg_id, "status": code})
    return Attempt(
        msg_id, url, started_at, time.time(), code, None, attempt, trigger, text
    )


async def simulate(
    url: str,
    events: Sequence[tuple[str, bytes]],
    *,
    scheme: str,
    secret: str,
    schedule: Schedule,
    faults: Faults | None = None,
    time_scale: float = 1.0,
    concurrency: int = 8,
) -> list[Attempt]:
    """Deliver ``events`` (msg id, body) with retries; return every attempt made."""
    chosen = faults or Faults()
    rng = random.Random(chosen.seed)
    order = _reordered(list(events), chosen.reorder_window, rng)
    gate = asyncio.Semaphore(concurrency)
    plan = _Run(url, scheme, secret, schedule, chosen, time_scale, rng)

    async with httpx.AsyncClient() as client:

        async def one(msg_id: str, body: bytes) -> list[Attempt]:
            async with gate:
                return await plan.event(client, msg_id, body)

        logs = await asyncio.gather(*(one(m, b) for m, b in order))
    return [attempt for log in logs for attempt in log]


@dataclass(frozen=True)
class _Run:
    """Everything one simulation shares between its events."""

    url: str
    scheme: str
    secret: str
    schedule: Schedule
    faults: Faults
    time_scale: float
    rng: random.Random

    async def event(
        self, client: httpx.AsyncClient, msg_id: str, body: bytes
    ) -> list[Attempt]:
        """Every attempt for one event, following the schedule."""
        attempts = [await self._attempt(client, msg_id, body, 1)]
        waited = 0.0

        for number, delay in enumerate(self.schedule.retry_delays_s, start=2):
            if attempts[-1].ok:
                break
            waited += delay
            give_up = self.schedule.give_up_after_s
            if give_up is not None and waited > give_up:
                break
            await asyncio.sleep(delay / self.time_scale)
            attempts.append(await self._attempt(client, msg_id, body, number))

        if attempts[-1].ok and self.rng.random() < self.faults.duplicate:
            attempts.append(
                await self._attempt(client, msg_id, body, 1, trigger="duplicate")
            )
        return attempts

    async def _attempt(
        self,
        client: httpx.AsyncClient,
        msg_id: str,
        body: bytes,
        number: int,
        trigger: str = "scheduled",
    ) -> Attempt:
        if self.rng.random() < self.faults.drop:
            now = time.time()
            error = "Dropped on the way (fault injection); no answer came."
            return Attempt(msg_id, self.url, now, now, None, error, number, trigger)

        return await deliver(
            client,
            self.url,
            body,
            scheme=self.scheme,
            secret=self.secret,
            msg_id=msg_id,
            timeout=self.schedule.response_timeout_s,
            attempt=number,
            trigger=trigger,
        )


def _reordered(
    events: list[tuple[str, bytes]], window: int, rng: random.Random
) -> list[tuple[str, bytes]]:
    """Shuffle events within consecutive windows of ``window``."""
    shuffled = []

    for start in range(0, len(events), window):
        chunk = events[start : start + window]
        rng.shuffle(chunk)
        shuffled.extend(chunk)
    return shuffled


class FaultyEndpoint:
    """An ASGI wrapper that makes an endpoint slow or failing.

    The first ``fail_first`` requests of each delivery id (``webhook-id``) and a
    ``fail_rate`` share of the rest are answered ``status``; every request first
    waits ``delay_s`` seconds.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        fail_first: int = 0,
        fail_rate: float = 0.0,
        status: int = 503,
        delay_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.app = app
        self.fail_first = fail_first
        self.fail_rate = fail_rate
        self.status = status
        self.delay_s = delay_s
        self._rng = random.Random(seed)
        self._seen: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Delay, maybe fail, otherwise pass the request to the wrapped app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        await asyncio.sleep(self.delay_s)
        if self._fails(scope):
            await _answer(send, self.status)
            return
        await self.app(scope, receive, send)

    def _fails(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers", []))
        key = headers.get(b"webhook-id", b"").decode("latin-1")
        self._seen[key] = seen = self._seen.get(key, 0) + 1

        return seen <= self.fail_first or self._rng.random() < self.fail_rate


async def _answer(send: Send, status: int) -> None:
    body = json.dumps({"error": "injected", "reason": "Fault injection."}).encode()
    headers = [(b"content-type", b"application/json")]

    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
