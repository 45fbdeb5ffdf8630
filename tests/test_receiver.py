"""Tests for hooklab.receiver on a real loopback server."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hooklab.ledger import SqliteLedger
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier, sign

SECRET = "whsec_" + base64.b64encode(b"receiver-test-key-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"someone-elses-key-0123456789").decode()
SCHEME = "standard-webhooks"
LIMIT = 4096


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path / "ledger.db") as opened:
        yield opened


@pytest.fixture
def client(ledger: SqliteLedger) -> Iterator[httpx.Client]:
    sources = {"shop": Source("shop", Verifier(SCHEME, SECRET))}
    app = create_app(sources, ledger, max_body_bytes=LIMIT)

    with serve_in_thread(app) as server, httpx.Client(base_url=server.url) as http:
        yield http


def _post(
    client: httpx.Client,
    body: bytes,
    *,
    msg_id: str = "msg_1",
    secret: str = SECRET,
    source: str = "shop",
) -> httpx.Response:
    headers = sign(SCHEME, secret, body, msg_id=msg_id)
    return client.post(f"/hooks/{source}", content=body, headers=headers)


def test_post_signed_json_is_accepted_and_stored(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    response = _post(client, b'{"type": "order.created", "data": {}}')

    assert response.status_code == 200
    assert response.json() == {
        "accepted": True,
        "event_id": "msg_1",
        "duplicate": False,
    }
    [stored] = ledger.deliveries()
    assert (stored.event_id, stored.event_type) == ("msg_1", "order.created")
    assert "webhook-signature" not in stored.headers


def test_post_same_id_twice_is_duplicate_and_stored_once(
    client: httpx.Client, ledger: SqliteLedger, caplog: pytest.LogCaptureFixture
) -> None:
    _post(client, b'{"type": "order.created"}')

    with caplog.at_level(logging.INFO, logger="hooklab.receiver"):
        again = _post(client, b'{"type": "order.created"}')

    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert ledger.count() == 1
    assert [r.getMessage() for r in caplog.records] == ["webhook.duplicate"]


def test_post_forged_signature_is_refused_with_reason(
    client: httpx.Client, ledger: SqliteLedger, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hooklab.receiver"):
        response = _post(client, b'{"type": "x"}', secret=OTHER_SECRET)

    assert response.status_code == 401
    assert response.json()["error"] == "signature"
    assert "webhook-signature" in response.json()["reason"]
    assert ledger.count() == 0
    assert [r.getMessage() for r in caplog.records] == ["webhook.rejected"]
    assert SECRET not in caplog.text and OTHER_SECRET not in caplog.text


def test_post_unsigned_is_refused_naming_missing_header(client: httpx.Client) -> None:
    response = client.post("/hooks/shop", content=b"{}")

    assert response.status_code == 401
    assert "webhook-id" in response.json()["reason"]


def test_post_unknown_source_is_not_found(client: httpx.Client) -> None:
    assert _post(client, b"{}", source="nobody").status_code == 404


def test_post_oversized_body_is_refused(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    response = _post(client, b"x" * (LIMIT + 1))

    assert response.status_code == 413
    assert ledger.count() == 0


def test_post_oversized_stream_without_length_is_refused(client: httpx.Client) -> None:
    """A chunked body with no Content-Length is cut off at the limit too."""
    chunks = iter([b"y" * LIMIT, b"y" * LIMIT])

    response = client.post("/hooks/shop", content=chunks)

    assert response.status_code == 413


def test_post_signed_non_json_is_quarantined_and_stored(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    response = _post(client, b"not json at all", msg_id="msg_bad")

    assert response.status_code == 202
    assert response.json()["accepted"] is True
    assert "not valid JSON" in response.json()["quarantined"]
    [stored] = ledger.deliveries()
    assert (stored.event_id, stored.body, stored.event_type) == (
        "msg_bad",
        b"not json at all",
        None,
    )


def test_server_stays_up_after_bad_input(client: httpx.Client) -> None:
    _post(client, b"\xff\xfe garbage")
    client.post("/hooks/shop", content=b"{}", headers={"webhook-signature": "v1="})

    assert client.get("/healthz").json() == {"ok": True}
    assert _post(client, json.dumps({"type": "a"}).encode(), msg_id="m2").is_success


def test_get_on_hook_route_is_method_not_allowed(client: httpx.Client) -> None:
    assert client.get("/hooks/shop").status_code == 405
