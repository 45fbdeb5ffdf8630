"""The webhook receiver: an ASGI app that verifies, records and acknowledges.

``POST /hooks/{source}`` reads the raw body (refusing bodies over the limit), verifies
it with the source's ``Verifier``, records it in the ledger and only then answers 2xx,
so an acknowledged delivery is on disk. A repeated event id is answered 200 with
``"duplicate": true`` and stored once. A correctly signed body that is not JSON is
still stored and answered 202 with the reason it was quarantined.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hooklab.errors import LedgerError
from hooklab.ledger import Ledger
from hooklab.signing import SignatureError, Verified, Verifier

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Source", "create_app"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 1_048_576


@dataclass(frozen=True)
class Source:
    """One webhook sender: its name in the URL and how its deliveries are verified.

    ``type_field`` names the top-level JSON field that holds the event type.
    """

    name: str
    verifier: Verifier
    type_field: str = "type"


class _BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""


def create_app(
    sources: Mapping[str, Source],
    ledger: Ledger,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """Build the receiver for ``sources``, recording into ``ledger``."""
    known = dict(sources)

    async def receive_hook(request: Request) -> JSONResponse:
        source = known.get(request.path_params["source"])
        if source is None:
            return _error(404, "source", "No webhook source has this name.")

        try:
            body = await _read_body(request, max_body_bytes)
        except _BodyTooLarge:
            return _error(413, "size", f"The body exceeds {max_body_bytes} bytes.")

        return await _handle(source, request, body, ledger)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/hooks/{source}", receive_hook, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes)


async def _handle(
    source: Source, request: Request, body: bytes, ledger: Ledger
) -> JSONResponse:
    """Verify, record, then acknowledge one delivery whose body is already read."""
    try:
        verified = source.verifier.verify(request.headers, body)
    except SignatureError as exc:
        logger.warning(
            "webhook.rejected", extra={"source": source.name, "reason": str(exc)}
        )
        return _error(401, "signature", str(exc))

    event_id = _event_id(verified, request, body)
    payload, quarantine = _parse(body)
    event_type = _event_type(payload, source.type_field)

    try:
        recorded = await run_in_threadpool(
            ledger.record, source.name, event_id, event_type, body, request.headers
        )
    except LedgerError:
        logger.exception("webhook.unrecorded", extra={"source": source.name})
        return _error(503, "ledger", "The delivery could not be stored; retry later.")

    return _acknowledge(source, event_id, not recorded.new, quarantine)


def _acknowledge(
    source: Source, event_id: str, duplicate: bool, quarantine: str | None
) -> JSONResponse:
    fields = {"source": source.name, "event_id": event_id}
    if duplicate:
        logger.warning("webhook.duplicate", extra=fields)
    else:
        logger.info("webhook.accepted", extra=fields)

    content: dict[str, Any] = {
        "accepted": True,
        "event_id": event_id,
        "duplicate": duplicate,
    }
    if quarantine is None:
        return JSONResponse(content)
    return JSONResponse({**content, "quarantined": quarantine}, status_code=202)


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, stopping as soon as it is known to exceed ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge

    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _event_id(verified: Verified, request: Request, body: bytes) -> str:
    """Prefer the scheme's delivery id, then webhook-id, then a content hash."""
    if verified.event_id:
        return verified.event_id

    header = request.headers.get("webhook-id")
    if header:
        return header
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _parse(body: bytes) -> tuple[Any, str | None]:
    """Return the decoded JSON, or None and the reason it could not be decoded."""
    try:
        return json.loads(body), None
    except UnicodeDecodeError:
        return None, "The body is not UTF-8 text."
    except json.JSONDecodeError as exc:
        return None, f"The body is not valid JSON ({exc.msg} at byte {exc.pos})."


def _event_type(payload: Any, field: str) -> str | None:
    if isinstance(payload, dict) and isinstance(payload.get(field), str):
        return str(payload[field])
    return None


def _error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status)
