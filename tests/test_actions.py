"""The built-in actions against a real target on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hooklab.actions import Event, ForwardError, forward, header_safe, load_action
from hooklab.errors import ConfigError
from hooklab.servers import RunningServer, serve_in_thread


@pytest.fixture
def target() -> Iterator[tuple[RunningServer, list[dict[str, Any]]]]:
    """A target that keeps what it is sent and answers as the path says."""
    seen: list[dict[str, Any]] = []

    async def take(request: Request) -> JSONResponse:
        seen.append({"headers": dict(request.headers), "body": await request.body()})
        status = int(request.path_params["status"])
        return JSONResponse({"ok": status < 300}, status_code=status)

    app = Starlette(routes=[Route("/answer/{status}", take, methods=["POST"])])
    with serve_in_thread(app) as server:
        yield server, seen


def _event(event_id: str = "evt_1") -> Event:
    return Event("shop", event_id, "order.created", {"n": 1}, b'{"n": 1}', 0.0)


def test_forward_posts_the_raw_body_with_its_identity(target: Any) -> None:
    server, seen = target

    forward(_event(), f"{server.url}/answer/200")

    [request] = seen
    assert request["body"] == b'{"n": 1}'
    assert request["headers"]["idempotency-key"] == "shop:evt_1"
    assert request["headers"]["x-hooklab-event-id"] == "evt_1"


def test_forward_percent_encodes_an_id_no_header_can_carry(target: Any) -> None:
    """Once, such an event went dead with UnicodeEncodeError on every attempt."""
    server, seen = target

    load_action(f"forward {server.url}/answer/202")(_event("evt_\u00e9t\u00e9"))

    headers = seen[0]["headers"]
    assert headers["x-hooklab-event-id"] == "evt_%C3%A9t%C3%A9"
    assert headers["idempotency-key"] == "shop:evt_%C3%A9t%C3%A9"


def test_forward_refused_by_the_target_raises_forward_error(target: Any) -> None:
    server, _ = target

    with pytest.raises(ForwardError, match="answered 500; expected 2xx"):
        forward(_event(), f"{server.url}/answer/500")


@pytest.mark.parametrize(
    ("text", "sent"),
    [
        ("evt_1", "evt_1"),
        ("a b", "a b"),
        ("evt_%C3%A9", "evt_%25C3%25A9"),  # not the same key as evt_\u00e9
        ("\u202e", "%E2%80%AE"),
    ],
)
def test_header_safe_keeps_printable_ascii_and_encodes_the_rest(
    text: str, sent: str
) -> None:
    assert header_safe(text) == sent


@pytest.mark.parametrize(
    "spec", ["forward http://127.0.0.1:1/ extra", "forward ftp://127.0.0.1/x"]
)
def test_forward_action_needs_one_http_url(spec: str) -> None:
    with pytest.raises(ConfigError, match="needs one http:// or https:// URL"):
        load_action(spec)
