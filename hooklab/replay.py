"""Replay stored events: run dead letters again, or re-deliver raw deliveries.

``choose`` picks events from the ledger (the dead ones, those received since a
time, or one id). ``requeue`` puts them back to pending, so the next worker runs
their actions again with the same idempotency key: after a fix, a dead letter takes
effect once. ``redeliver`` posts the stored raw bodies to another endpoint (a
staging receiver), with the stored headers and a fresh signature.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import httpx

from hooklab.errors import ConfigError
from hooklab.ledger import Delivery, EventState, Ledger
from hooklab.sender import Attempt, deliver

__all__ = ["choose", "redeliver", "requeue"]

logger = logging.getLogger(__name__)

# Headers that describe one hop or one signature, not the event.
_NOT_REPLAYED = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
)


def choose(
    ledger: Ledger,
    *,
    dead: bool = False,
    since: float | None = None,
    event_id: str | None = None,
) -> list[EventState]:
    """The events a replay concerns; exactly one of the three choices is needed."""
    chosen = sum([dead, since is not None, event_id is not None])
    if chosen != 1:
        raise ConfigError(
            "Choose what to replay with exactly one of --dead, --since or --id."
        )

    if dead:
        return ledger.events(status="dead")
    return ledger.events(since=since, event_id=event_id)


def requeue(ledger: Ledger, events: Sequence[EventState], *, now: float) -> int:
    """Put ``events`` back to pending with fresh attempts; return how many."""
    count = ledger.requeue([(e.source, e.event_id) for e in events], now=now)

    logger.info("replay.requeued", extra={"events": count})
    return count


def redeliver(
    ledger: Ledger,
    events: Sequence[EventState],
    url: str,
    *,
    scheme: str,
    secret: str,
    timeout: float = 15.0,
) -> list[Attempt]:
    """POST each event's stored body to ``url``, signed afresh with ``secret``."""
    return asyncio.run(_redeliver_all(ledger, events, url, scheme, secret, timeout))


async def _redeliver_all(
    ledger: Ledger,
    events: Sequence[EventState],
    url: str,
    scheme: str,
    secret: str,
    timeout: float,
) -> list[Attempt]:
    attempts = []

    async with httpx.AsyncClient() as client:
        for event in events:
            delivery = _delivery(ledger, event)
            headers = {
                name: value
                for name, value in delivery.headers.items()
                if name not in _NOT_REPLAYED
            }
            attempts.append(
                await deliver(
                    client,
                    url,
                    delivery.body,
                    scheme=scheme,
                    secret=secret,
                    msg_id=event.event_id,
                    timeout=timeout,
                    extra_headers=headers,
                )
            )
    return attempts


def _delivery(ledger: Ledger, event: EventState) -> Delivery:
    found = ledger.delivery(event.source, event.event_id)
    if found is None:
        raise ConfigError(
            f"The ledger has no delivery {event.source}/{event.event_id} to replay."
        )
    return found
