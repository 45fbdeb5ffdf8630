"""The webhook receiver: an ASGI app that checks, records and acknowledges.

``POST /hooks/{source}`` runs each delivery through these steps, in order, and
answers at the first that refuses it, always with ``{"error", "reason"}`` JSON:

1. a declared body over the size limit: 413;
2. a source nobody configured: 404;
3. a client address outside the allowlist (after trusted proxies): 403;
4. a body that grows over the limit (413), stalls (408) or is empty (400);
5. a signature that does not verify on the raw bytes: 401;
6. the event id and type, read the provider's way (``hooklab.events``);
7. the ledger write, shared with concurrent requests (``hooklab.groupcommit``);
8. only then 200 (``"duplicate": true`` for a repeat, which is not processed
   again) or 202 for a signed body that cannot be decoded, kept as quarantined.

The answer never waits for processing: workers (``hooklab.processing``) pick events
up from the ledger. ``GET /healthz`` says the app is up; ``GET /metrics`` serves
counters and the acknowledgement-latency histogram in the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from hooklab.errors import ConfigError, LedgerError
from hooklab.events import Envelope, open_envelope
from hooklab.groupcommit import GroupCommitter
from hooklab.ledger import Incoming, Ledger
from hooklab.metrics import Metrics
from hooklab.signing import SignatureError, Verifier

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "Guard",
    "Source",
    "create_app",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_048_576
DEFAULT_BODY_TIMEOUT_S = 10.0

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Source:
    """One webhook sender: its name in the URL and how its deliveries are verified.

    ``provider`` chooses how the event id and type are read (see
    ``hooklab.events``); it defaults to the verifier's scheme. ``type_field``, when
    set, names the top-level JSON field that holds the event type instead.
    """

    name: str
    verifier: Verifier
    type_field: str | None = None
    provider: str | None = None

    @property
    def id_rule(self) -> str:
        """The provider name whose id rule applies."""
        return self.provider or self.verifier.scheme


@dataclass(frozen=True)
class Guard:
    """Limits every delivery must pass before its signature is even checked.

    ``allow`` lists CIDR ranges a client may come from (empty: any address);
    ``trusted_proxies`` is how many proxies in front of the receiver append to
    ``X-Forwarded-For``, so the client is the entry that many places from its end.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S
    allow: tuple[Network, ...] = field(default=())
    trusted_proxies: int = 0

    @classmethod
    def build(
        cls,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
        allow: Sequence[str] = (),
        trusted_proxies: int = 0,
    ) -> Guard:
        """Check and build the limits; a bad value raises ConfigError naming it."""
        if max_body_bytes < 1 or body_timeout_s <= 0 or trusted_proxies < 0:
            raise ConfigError(
                "The receiver needs max_body_bytes >= 1, body_timeout_s > 0 and "
                f"trusted_proxies >= 0; got {max_body_bytes}, {body_timeout_s} "
                f"and {trusted_proxies}."
            )

        networks = tuple(_network(text) for text in allow)
        return cls(max_body_bytes, body_timeout_s, networks, trusted_proxies)


class _Refused(Exception):
    """A delivery the receiver answers with ``status`` and a reason."""

    def __init__(self, status: int, error: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.error = error
        self.reason = reason


def create_app(
    sources: Mapping[str, Source],
    ledger: Ledger,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    guard: Guard | None = None,
    metrics: Metrics | None = None,
    on_commit: Callable[[], None] | None = None,
) -> Starlette:
    """Build the receiver for ``sources``, recording into ``ledger``.

    ``guard`` sets every limit (``max_body_bytes`` is a shortcut for the size
    alone); ``on_commit`` is called after each commit that stored a new event.
    """
    limits = guard or Guard.build(max_body_bytes=max_body_bytes)
    counters = metrics or Metrics()
    committer = GroupCommitter(ledger, on_commit=on_commit)
    hooks = _Hooks(dict(sources), limits, counters, committer)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        committer.close()

    routes = [
        Route("/hooks/{source}", hooks.receive, methods=["POST"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/metrics", lambda request: _metrics(counters), methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


async def _healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _metrics(metrics: Metrics) -> PlainTextResponse:
    return PlainTextResponse(
        metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


@dataclass
class _Hooks:
    """The ``/hooks/{source}`` endpoint and what it needs."""

    sources: dict[str, Source]
    guard: Guard
    metrics: Metrics
    committer: GroupCommitter

    async def receive(self, request: Request) -> Response:
        """Take one delivery through every step; see the module docstring."""
        started = time.perf_counter()
        name = request.path_params["source"]
        self.metrics.inc("received", ("source", name))

        try:
            response = await self._accept(request, name)
        except _Refused as refused:
            self.metrics.inc("refused", ("reason", refused.error))
            return _error(refused.status, refused.error, refused.reason)

        self.metrics.observe_ack(time.perf_counter() - started)
        return response

    async def _accept(self, request: Request, name: str) -> Response:
        _check_declared_size(request, self.guard.max_body_bytes)
        source = self.sources.get(name)
        if source is None:
            raise _Refused(404, "source", f"No webhook source is called {name!r}.")
        _check_address(request, self.guard)

        body = await _read_body(request, self.guard)
        headers = dict(request.headers.items())  # ASGI names are lower-case already
        envelope = _verify_and_open(source, request, headers, body)
        incoming = Incoming(
            source.name,
            envelope.event_id,
            envelope.event_type,
            body,
            headers,
            envelope.quarantine,
        )
        return await self._store(incoming, envelope)

    async def _store(self, incoming: Incoming, envelope: Envelope) -> Response:
        try:
            recorded = await self.committer.record(incoming)
        except LedgerError:
            logger.exception("webhook.unrecorded", extra={"source": incoming.source})
            raise _Refused(
                503, "ledger", "The delivery could not be stored; retry later."
            ) from None

        return self._acknowledge(incoming, not recorded.new, envelope.quarantine)

    def _acknowledge(
        self, incoming: Incoming, duplicate: bool, quarantine: str | None
    ) -> JSONResponse:
        fields = {"source": incoming.source, "event_id": incoming.event_id}
        label = ("source", incoming.source)
        if duplicate:
            logger.warning("webhook.duplicate", extra=fields)
            self.metrics.inc("duplicates", label)
        elif quarantine:
            logger.warning("webhook.quarantined", extra=fields)
            self.metrics.inc("quarantined", label)
        else:
            logger.info("webhook.accepted", extra=fields)
            self.metrics.inc("accepted", label)

        content: dict[str, Any] = {
            "accepted": True,
            "event_id": incoming.event_id,
            "duplicate": duplicate,
        }
        if quarantine is None:
            return JSONResponse(content)
        return JSONResponse({**content, "quarantined": quarantine}, status_code=202)


def _check_declared_size(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> _Refused:
    return _Refused(413, "size", f"The body exceeds the limit of {limit} bytes.")


def _check_address(request: Request, guard: Guard) -> None:
    """Refuse a client outside ``guard.allow``; no allowlist lets everyone in."""
    if not guard.allow:
        return

    address = _client_address(request, guard.trusted_proxies)
    if not any(address in network for network in guard.allow):
        logger.warning("webhook.forbidden", extra={"address": str(address)})
        raise _Refused(
            403, "address", f"Deliveries from {address} are not allowed here."
        )


def _client_address(
    request: Request, trusted_proxies: int
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client's address: the peer, or the X-Forwarded-For entry set by proxies.

    Each of ``trusted_proxies`` appends the address it received from, so the
    client is that many entries from the end; a shorter header is refused.
    """
    peer = request.client.host if request.client else ""
    if trusted_proxies == 0:
        return _address(peer, "the connection's peer")

    forwarded = request.headers.get("x-forwarded-for", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    if len(hops) < trusted_proxies:
        raise _Refused(
            403,
            "address",
            f"X-Forwarded-For names {len(hops)} addresses; the receiver sits behind "
            f"{trusted_proxies} trusted proxies and expects at least that many.",
        )
    return _address(hops[-trusted_proxies], "X-Forwarded-For")


def _address(text: str, where: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise _Refused(
            403, "address", f"{where} does not hold an IP address."
        ) from None


async def _read_body(request: Request, guard: Guard) -> bytes:
    """Read the body, stopping once it exceeds the limit or stalls past the timeout."""
    chunks: list[bytes] = []
    size = 0

    try:
        async with asyncio.timeout(guard.body_timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > guard.max_body_bytes:
                    raise _too_large(guard.max_body_bytes)
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(
            408,
            "timeout",
            f"The body did not arrive within {guard.body_timeout_s:g} s.",
        ) from None

    if not size:
        raise _Refused(400, "empty", "The body is empty; a delivery carries an event.")
    return b"".join(chunks)


def _verify_and_open(
    source: Source, request: Request, headers: dict[str, str], body: bytes
) -> Envelope:
    try:
        verified = source.verifier.verify(headers, body, url=str(request.url))
    except SignatureError as exc:
        logger.warning(
            "webhook.rejected", extra={"source": source.name, "reason": str(exc)}
        )
        raise _Refused(401, "signature", str(exc)) from None

    return open_envelope(
        source.id_rule,
        headers,
        body,
        scheme_id=verified.event_id,
        type_field=source.type_field,
    )


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(
            f"The receiver allowlist entry {text!r} is not a CIDR range such as "
            "192.0.2.0/24 or 2001:db8::/32."
        ) from None


def _error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status)
