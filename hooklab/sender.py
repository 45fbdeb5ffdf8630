"""Deliver one signed webhook, the way a provider would, and log the attempt.

Retries with provider schedules, provider presets and fault injection come in issue 4.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from hooklab.signing import sign

__all__ = ["Attempt", "deliver"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt: the shape of one row of a provider's delivery log."""

    msg_id: str
    url: str
    started_at: float
    finished_at: float
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the receiver answered with a 2xx status."""
        return self.status_code is not None and 200 <= self.status_code < 300


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
) -> Attempt:
    """Sign ``body`` with ``scheme`` and POST it to ``url`` once.

    ``extra_headers`` are sent too; the fresh signature headers win over any of
    them with the same name.
    """
    headers = httpx.Headers({"content-type": "application/json"})
    headers.update(extra_headers or {})
    headers.update(sign(scheme, secret, body, timestamp=timestamp, msg_id=msg_id))
    started_at = time.time()

    try:
        response = await client.post(
            url, content=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
        logger.warning("webhook.failed", extra={"msg_id": msg_id, "error": error})
        return Attempt(msg_id, url, started_at, time.time(), error=error)

    attempt = Attempt(msg_id, url, started_at, time.time(), response.status_code)
    logger.info("webhook.sent", extra={"msg_id": msg_id, "status": attempt.status_code})
    return attempt
