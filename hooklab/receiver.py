"""The webhook receiver: an ASGI app that checks, records and acknowledges.

``POST /hooks/{source}`` runs each delivery through these steps, in order, and
answers at the first that refuses it, always with ``{"error", "reason"}`` JSON:

1. a declared body over the size limit: 413;
2. a source nobody configured: 404;
3. a client address outside the allowlist (after trusted proxies): 403;
4. a body that grows over the limit (413), stalls (408) or is empty (400);
5. a signature that does not verify on the raw bytes: 401;
6. the event id and type, read the provider's way (``hooklab.events``);
7. the ledger write, shared with concurrent requests (``hooklab.groupcommit``, or
   the writer process of ``hooklab.ledgerwriter`` that ``hooklab serve`` uses);
8. only then 200 (``"duplicate": true`` for a repeat, which is not processed
   again) or 202 for a signed body that cannot be decoded, kept as quarantined.

A Slack source's signed ``url_verification`` handshake is answered with its
challenge after step 5 and not stored: it is not an event.

The answer never waits for processing: workers (``hooklab.processing``) pick events
up from the ledger. ``GET /healthz`` says the app is up; ``GET /metrics`` serves
counters and the acknowledgement-latency histogram in the Prometheus text format.

Deliveries are the one hot path, so ``ReceiverApp`` hands ``/hooks/...`` straight to
the hook endpoint, a plain ASGI callable, and everything else (health, metrics,
lifespan, unknown paths) to Starlette. On the same uvicorn server a plain ASGI no-op
answered about 43,000 requests a second where a Starlette one answered 27,000: its
request, response and middleware objects cost about 16 µs a request, as much as
verifying and parsing a delivery.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from hooklab.errors import ConfigError, LedgerError
from hooklab.events import Envelope, open_envelope
from hooklab.groupcommit import GroupCommitter
from hooklab.ledger import Incoming, Ledger
from hooklab.ledgerwriter import ProcessCommitter
from hooklab.metrics import Metrics
from hooklab.signing import SignatureError, Verifier
from hooklab.signing.base import LowerCaseHeaders

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "Guard",
    "UNKNOWN_SOURCE",
    "ReceiverApp",
    "Source",
    "create_app",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_048_576
#: The metrics label for deliveries to a source nobody configured.
UNKNOWN_SOURCE = "(unknown)"
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
    writer: Literal["thread", "process"] = "thread",
) -> ReceiverApp:
    """Build the receiver for ``sources``, recording into ``ledger``.

    ``guard`` sets every limit (``max_body_bytes`` is a shortcut for the size
    alone); ``on_commit`` is called after each commit that stored a new event.
    ``writer`` says where deliveries are committed: on the event loop, synced by
    a thread (``hooklab.groupcommit``), or in a writer process of their own
    (``hooklab.ledgerwriter``; ``hooklab serve`` uses it, and it needs a ledger
    file, a ``SqliteLedger``).
    """
    limits = guard or Guard.build(max_body_bytes=max_body_bytes)
    counters = metrics or Metrics()
    committer: GroupCommitter | ProcessCommitter
    if writer == "process":
        path = getattr(ledger, "path", None)
        if path is None:
            raise ConfigError("A writer process needs a ledger file (a SqliteLedger).")
        committer = ProcessCommitter(path, on_commit=on_commit)
    else:
        committer = GroupCommitter(ledger, on_commit=on_commit)
    hooks = _Hooks(dict(sources), limits, counters, committer, _Stalls(limits))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if isinstance(committer, ProcessCommitter):
            try:  # now, so that the first delivery does not wait for it
                await committer.start()
            except LedgerError as exc:  # /healthz says so; each delivery retries
                logger.error("ledger.writer_failed", extra={"reason": str(exc)})
        yield
        await committer.aclose()

    async def healthz(request: Request) -> JSONResponse:
        problem = getattr(committer, "problem", None)
        if problem:
            return JSONResponse({"ok": False, "reason": problem}, status_code=503)
        return JSONResponse({"ok": True})

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", lambda request: _metrics(counters), methods=["GET"]),
    ]
    return ReceiverApp(hooks, Starlette(routes=routes, lifespan=lifespan))


class ReceiverApp:
    """The receiver's ASGI app: ``/hooks/{source}`` to the hook endpoint, the rest
    to Starlette (which also runs the lifespan that closes the group committer)."""

    def __init__(self, hooks: _Hooks, framework: Starlette) -> None:
        self._hooks = hooks
        self.framework = framework

    def __repr__(self) -> str:
        return f"ReceiverApp(sources={sorted(self._hooks.sources)})"

    @property
    def committer(self) -> GroupCommitter | ProcessCommitter:
        """What commits the deliveries (its figures are read by ``make bench``)."""
        return self._hooks.committer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path.startswith("/hooks/") or path == "/hooks":
            await self._hooks(scope, receive, send, path[7:])
            return
        await self.framework(scope, receive, send)


def _metrics(metrics: Metrics) -> PlainTextResponse:
    return PlainTextResponse(
        metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


class _Gone(Exception):
    """The client disconnected before its body arrived; there is no one to answer."""


class _Stalls:
    """Times out body reads that stall, with one sweep for all requests.

    A timer per request (``asyncio.timeout``) cost about 5 % of the receiver's
    time; here a request only notes when it started reading, and a sweep that
    runs while any read is in progress cancels those past the limit. A stalled
    client is therefore answered between ``body_timeout_s`` and 1.25 times it.
    """

    def __init__(self, guard: Guard) -> None:
        self.timeout_s = guard.body_timeout_s
        self.period_s = guard.body_timeout_s / 4
        self._reading: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._sweeping: asyncio.AbstractEventLoop | None = None  # the sweep's loop

    async def read(
        self, receive: Receive, limit: int, loop: asyncio.AbstractEventLoop
    ) -> bytes:
        """The whole body; raise _Refused (408, 413, 400) or _Gone.

        ``loop`` is the running loop, passed in: on Python 3.11 finding it costs a
        getpid system call, and a delivery would otherwise pay three.
        """
        task = asyncio.current_task(loop)
        assert task is not None
        self._reading[task] = loop.time() + self.timeout_s
        if self._sweeping is not loop:  # none yet, or one on a loop now closed
            self._sweeping = loop
            loop.call_later(self.period_s, self._sweep, loop)

        try:
            return await _body(receive, limit)
        except asyncio.CancelledError:
            if task not in self._expired:
                raise
            self._expired.discard(task)
            task.uncancel()
            raise _Refused(
                408, "timeout", f"The body did not arrive within {self.timeout_s:g} s."
            ) from None
        finally:
            self._reading.pop(task, None)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in list(self._reading.items()):
            if deadline <= now:
                del self._reading[task]
                self._expired.add(task)
                task.cancel()

        if self._reading:
            loop.call_later(self.period_s, self._sweep, loop)
        else:
            self._sweeping = None


async def _body(receive: Receive, limit: int) -> bytes:
    """Read the body message by message, stopping once it exceeds ``limit``."""
    message = await receive()  # with the headers, in nearly every delivery
    body = _chunk(message)
    more = message.get("more_body", False)
    if more:
        chunks = [body]
        size = len(body)
        while more:
            if size > limit:
                raise _too_large(limit)
            message = await receive()
            chunk = _chunk(message)
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)

    if len(body) > limit:
        raise _too_large(limit)
    if not body:
        raise _Refused(400, "empty", "The body is empty; a delivery carries an event.")
    return body


def _chunk(message: Message) -> bytes:
    if message["type"] == "http.disconnect":
        raise _Gone()
    body: bytes = message.get("body", b"")
    return body


@dataclass
class _Hooks:
    """The ``/hooks/{source}`` endpoint and what it needs."""

    sources: dict[str, Source]
    guard: Guard
    metrics: Metrics
    committer: GroupCommitter | ProcessCommitter
    stalls: _Stalls

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, name: str
    ) -> None:
        """Take one delivery through every step; see the module docstring."""
        started = time.perf_counter()
        if not name or "/" in name:
            reason = "Deliveries go to /hooks/{source}: one name, no further path."
            await _send_json(send, 404, {"error": "source", "reason": reason})
            return
        if scope["method"] != "POST":
            await _send_json(
                send,
                405,
                {"error": "method", "reason": "Deliveries are sent with POST."},
                allow=True,
            )
            return

        # Unknown names share one label, so a scan of made-up URLs cannot grow
        # /metrics; every delivery received ends in exactly one outcome counter.
        known = name in self.sources
        self.metrics.inc("received", ("source", name if known else UNKNOWN_SOURCE))
        try:
            status, payload = await self._accept(scope, receive, name)
        except _Refused as refused:
            self.metrics.inc("refused", ("reason", refused.error))
            await _send_json(
                send, refused.status, {"error": refused.error, "reason": refused.reason}
            )
            return
        except _Gone:
            self.metrics.inc("refused", ("reason", "disconnected"))
            return
        except asyncio.CancelledError:  # the server is stopping and cannot wait
            self.metrics.inc("refused", ("reason", "shutdown"))
            reason = "The receiver is shutting down; retry later."
            await _send_json(send, 503, {"error": "shutdown", "reason": reason})
            # Answered: ending here rather than re-raising lets uvicorn finish
            # this request quietly instead of logging a traceback for each one.
            return
        except Exception:  # a bug must not leave the sender without an answer
            logger.exception("webhook.failed", extra={"source": name})
            self.metrics.inc("refused", ("reason", "internal"))
            reason = "The receiver failed on this delivery; retry later."
            await _send_json(send, 500, {"error": "internal", "reason": reason})
            return

        self.metrics.observe_ack(time.perf_counter() - started)
        await _send(send, status, payload)

    async def _accept(
        self, scope: Scope, receive: Receive, name: str
    ) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        # Known shortcoming: a repeated header keeps only its last value (two
        # signature lines [good, bad] are refused), and values are read as
        # Latin-1, so a non-ASCII id signed as UTF-8 does not verify; providers
        # send one line each, in ASCII.
        headers = LowerCaseHeaders(
            (key.decode("latin-1").lower(), value.decode("latin-1"))
            for key, value in scope["headers"]
        )
        _check_declared_size(headers, self.guard.max_body_bytes)
        source = self.sources.get(name)
        if source is None:
            raise _Refused(404, "source", f"No webhook source is called {name!r}.")
        _check_address(scope, headers, self.guard)

        body = await self.stalls.read(receive, self.guard.max_body_bytes, loop)
        envelope = _verify_and_open(
            source, scope, headers, body, self.guard.trusted_proxies
        )
        challenge = _slack_challenge(source, envelope)
        if challenge is not None:
            logger.info("webhook.slack_challenge", extra={"source": source.name})
            self.metrics.inc("challenges", ("source", source.name))
            return 200, json.dumps({"challenge": challenge}).encode()

        incoming = Incoming(
            source.name,
            envelope.event_id,
            envelope.event_type,
            body,
            headers,
            envelope.quarantine,
        )
        try:
            recorded = await self.committer.record(incoming, loop)
        except LedgerError as exc:  # one line each: a locked ledger fails many
            logger.error(
                "webhook.unrecorded", extra={"source": source.name, "reason": str(exc)}
            )
            raise _Refused(
                503, "ledger", "The delivery could not be stored; retry later."
            ) from None

        return self._acknowledge(incoming, not recorded.new, envelope.quarantine)

    def _acknowledge(
        self, incoming: Incoming, duplicate: bool, quarantine: str | None
    ) -> tuple[int, bytes]:
        label = ("source", incoming.source)
        if duplicate:
            logger.warning("webhook.duplicate", extra=_fields(incoming))
            self.metrics.inc("duplicates", label)
        elif quarantine:
            logger.warning("webhook.quarantined", extra=_fields(incoming))
            self.metrics.inc("quarantined", label)
        else:
            if logger.isEnabledFor(logging.INFO):
                logger.info("webhook.accepted", extra=_fields(incoming))
            self.metrics.inc("accepted", label)

        event_id = json.dumps(incoming.event_id)
        answer = (
            f'{{"accepted":true,"event_id":{event_id},"duplicate":{_BOOL[duplicate]}'
        )
        if quarantine is None:
            return 200, (answer + "}").encode()
        return 202, f'{answer},"quarantined":{json.dumps(quarantine)}}}'.encode()


_BOOL = {True: "true", False: "false"}
_JSON_HEADERS = [(b"content-type", b"application/json")]


def _fields(incoming: Incoming) -> dict[str, str]:
    return {"source": incoming.source, "event_id": incoming.event_id}


async def _send(
    send: Send, status: int, payload: bytes, *, allow: bool = False
) -> None:
    headers = [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]
    if allow:
        headers.append((b"allow", b"POST"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _send_json(
    send: Send, status: int, content: dict[str, str], *, allow: bool = False
) -> None:
    await _send(send, status, json.dumps(content).encode(), allow=allow)


def _check_declared_size(headers: Mapping[str, str], limit: int) -> None:
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> _Refused:
    return _Refused(413, "size", f"The body exceeds the limit of {limit} bytes.")


def _check_address(scope: Scope, headers: Mapping[str, str], guard: Guard) -> None:
    """Refuse a client outside ``guard.allow``; no allowlist lets everyone in."""
    if not guard.allow:
        return

    address = _client_address(scope, headers, guard.trusted_proxies)
    if not any(address in network for network in guard.allow):
        logger.warning("webhook.forbidden", extra={"address": str(address)})
        raise _Refused(
            403, "address", f"Deliveries from {address} are not allowed here."
        )


def _client_address(
    scope: Scope, headers: Mapping[str, str], trusted_proxies: int
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The client's address: the peer, or the X-Forwarded-For entry set by proxies.

    Each of ``trusted_proxies`` appends the address it received from, so the
    client is that many entries from the end; a shorter header is refused.
    """
    client = scope.get("client")
    peer = client[0] if client else ""
    if trusted_proxies == 0:
        return _address(peer, "the connection's peer")

    # A proxy may add its own header line instead of extending the last one;
    # the lines together are one list (RFC 9110, section 5.3).
    forwarded = ",".join(
        value.decode("latin-1")
        for name, value in scope["headers"]
        if name == b"x-forwarded-for"
    )
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
        address = ipaddress.ip_address(text)
    except ValueError:
        raise _Refused(
            403, "address", f"{where} does not hold an IP address."
        ) from None
    # A dual-stack proxy writes an IPv4 client as ::ffff:a.b.c.d; IPv4 ranges
    # in the allowlist must still match it.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _verify_and_open(
    source: Source,
    scope: Scope,
    headers: dict[str, str],
    body: bytes,
    trusted_proxies: int = 0,
) -> Envelope:
    try:
        verified = source.verifier.verify(
            headers, body, url=_request_url(scope, headers, trusted_proxies)
        )
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


def _slack_challenge(source: Source, envelope: Envelope) -> str | None:
    """The challenge of Slack's signed ``url_verification`` handshake, if this is one.

    Slack sends it when an app's request URL is set and enables the URL only once
    the answer echoes the challenge (https://api.slack.com/events/url_verification).
    It is not an event, so it is answered without being stored.
    """
    payload = envelope.payload
    if source.id_rule != "slack" or not isinstance(payload, dict):
        return None
    if payload.get("type") != "url_verification":
        return None
    challenge = payload.get("challenge")
    return challenge if isinstance(challenge, str) else None


def _request_url(
    scope: Scope, headers: Mapping[str, str], trusted_proxies: int = 0
) -> str:
    """The URL the sender posted to, as schemes that sign it (Twilio, Square) need.

    Behind trusted proxies that end TLS, the sender posted over https: the scheme
    is the one the nearest proxy put in X-Forwarded-Proto (the Host header is
    passed through by proxies, as they usually are configured to).
    """
    host = headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    scheme = scope.get("scheme", "http")
    forwarded = headers.get("x-forwarded-proto", "")
    if trusted_proxies and forwarded:
        nearest = forwarded.split(",")[-1].strip().lower()
        scheme = nearest if nearest in ("http", "https") else scheme
    # The path as it came on the wire: a provider signs the URL it posts to,
    # percent-escapes and all, and the decoded path would lose them.
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("root_path", "") + scope["path"]
    url = f"{scheme}://{host}{path}"
    query = scope.get("query_string", b"")
    return f"{url}?{query.decode('latin-1')}" if query else url


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ConfigError(
            f"The receiver allowlist entry {text!r} is not a CIDR range such as "
            "192.0.2.0/24 or 2001:db8::/32."
        ) from None
