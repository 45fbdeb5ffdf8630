"""Tests for hooklab.receiver on a real loopback server."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hooklab.actions import Event
from hooklab.errors import ConfigError
from hooklab.ledger import SqliteLedger
from hooklab.loadgen import encode_post, run_load
from hooklab.metrics import Metrics
from hooklab.processing import Pipeline, Processor
from hooklab.receiver import Guard, ReceiverApp, Source, create_app
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


def _guarded(
    ledger: SqliteLedger, guard: Guard, metrics: Metrics | None = None
) -> ReceiverApp:
    sources = {
        "shop": Source("shop", Verifier(SCHEME, SECRET)),
        "billing": Source("billing", Verifier(SCHEME, SECRET)),
    }
    return create_app(sources, ledger, guard=guard, metrics=metrics)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def strict(ledger: SqliteLedger, metrics: Metrics) -> Iterator[httpx.Client]:
    """A receiver with a short body timeout and a small size limit."""
    guard = Guard.build(max_body_bytes=LIMIT, body_timeout_s=0.3)

    with (
        serve_in_thread(_guarded(ledger, guard, metrics)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        yield http


def _stalled_post(
    base_url: str, declared: int, sent: bytes
) -> tuple[int, dict[str, str]]:
    """Declare ``declared`` body bytes, send fewer and wait for the answer."""
    url = httpx.URL(base_url)
    headers = sign(SCHEME, SECRET, b"x" * declared, msg_id="slow")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /hooks/shop HTTP/1.1\r\nHost: {url.host}\r\n{head}"
        f"Content-Length: {declared}\r\n\r\n"
    ).encode()

    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(request + sent)
        raw = _read_response(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _read_response(sock: socket.socket) -> bytes:
    """Read one response whose body length is in its Content-Length header."""
    raw = b""
    while b"\r\n\r\n" not in raw:
        raw += sock.recv(65536)
    head, _, body = raw.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_post_slow_client_never_finishing_body_is_timed_out(
    strict: httpx.Client, ledger: SqliteLedger
) -> None:
    started = time.monotonic()

    status, answer = _stalled_post(str(strict.base_url), 100, b"x" * 10)

    assert (status, answer["error"]) == (408, "timeout")
    assert time.monotonic() - started < 3
    assert ledger.count() == 0
    assert strict.get("/healthz").json() == {"ok": True}


def _bad_inputs(client: httpx.Client) -> dict[str, httpx.Response]:
    """Every kind of bad delivery, each sent once."""
    body = b'{"type": "order.created"}'
    signed = sign(SCHEME, SECRET, body, msg_id="msg_bad")
    old = sign(
        SCHEME, SECRET, body, msg_id="msg_old", timestamp=int(time.time()) - 3600
    )
    return {
        "oversized": _post(client, b"x" * (LIMIT + 1), msg_id="big"),
        "unknown-source": _post(client, body, source="nobody"),
        "missing-headers": client.post("/hooks/shop", content=body),
        "malformed-signature": client.post(
            "/hooks/shop", content=body, headers={**signed, "webhook-signature": "v1"}
        ),
        "malformed-timestamp": client.post(
            "/hooks/shop", content=body, headers={**signed, "webhook-timestamp": "soon"}
        ),
        "forged": _post(client, body, secret=OTHER_SECRET, msg_id="forged"),
        "stale-timestamp": client.post("/hooks/shop", content=body, headers=old),
        "empty": _post(client, b"", msg_id="empty"),
        "invalid-json": _post(client, b"{oops", msg_id="bad-json"),
        "invalid-utf8": _post(client, b'{"a": "\xff"}', msg_id="bad-utf8"),
    }


EXPECTED_BAD = {
    "oversized": (413, "size"),
    "unknown-source": (404, "source"),
    "missing-headers": (401, "signature"),
    "malformed-signature": (401, "signature"),
    "malformed-timestamp": (401, "signature"),
    "forged": (401, "signature"),
    "stale-timestamp": (401, "signature"),
    "empty": (400, "empty"),
}


def test_bad_inputs_each_get_status_and_reason_and_lose_nothing(
    strict: httpx.Client, ledger: SqliteLedger, metrics: Metrics
) -> None:
    assert _post(strict, b'{"type": "order.created"}', msg_id="kept").is_success

    answers = _bad_inputs(strict)

    for name, (status, error) in EXPECTED_BAD.items():
        answer = answers[name]
        assert (name, answer.status_code, answer.json()["error"]) == (
            name,
            status,
            error,
        )
        assert answer.json()["reason"].endswith((".", ")"))
    for name in ("invalid-json", "invalid-utf8"):
        assert answers[name].status_code == 202
        assert answers[name].json()["accepted"] is True
    assert strict.get("/healthz").json() == {"ok": True}
    states = {e.event_id: e.status for e in ledger.events()}
    assert states == {
        "kept": "pending",
        "bad-json": "quarantined",
        "bad-utf8": "quarantined",
    }
    assert metrics.value("refused", ("reason", "signature")) == 5
    assert SECRET not in str([a.text for a in answers.values()])


def test_post_same_id_from_two_sources_is_two_events(
    strict: httpx.Client, ledger: SqliteLedger
) -> None:
    first = _post(strict, b'{"type": "a"}', msg_id="same", source="shop")
    second = _post(strict, b'{"type": "a"}', msg_id="same", source="billing")

    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, False)
    assert ledger.count() == 2


async def _post_concurrently(
    base_url: str, bodies: list[tuple[str, bytes]], connections: int = 32
) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
        posts = [
            client.post(
                "/hooks/shop",
                content=body,
                headers=sign(SCHEME, SECRET, body, msg_id=i),
            )
            for i, body in bodies
        ]
        return await asyncio.gather(*posts)


def test_post_same_id_at_same_moment_one_accepted_rest_duplicate(
    strict: httpx.Client, ledger: SqliteLedger
) -> None:
    bodies = [("evt_race", b'{"type": "a"}')] * 24

    answers = asyncio.run(_post_concurrently(str(strict.base_url), bodies))

    assert sorted(a.json()["duplicate"] for a in answers) == [False] + [True] * 23
    assert ledger.stats()["pending"] == 1
    assert ledger.deliveries()[0].repeats == 23


def test_post_concurrent_deliveries_share_commits(
    ledger: SqliteLedger, metrics: Metrics
) -> None:
    """32 connections at once: far fewer commits (fsyncs) than deliveries."""
    requests = [_encoded(f"evt_{n}") for n in range(640)]
    guard = Guard.build(max_body_bytes=LIMIT)

    with serve_in_thread(_guarded(ledger, guard, metrics)) as server:
        before = ledger.commits
        result = asyncio.run(run_load(server.host, server.port, requests))
        commits = ledger.commits - before

    assert set(result.statuses) == {200}
    assert ledger.count() == 640
    assert commits < 640 / 2


def _encoded(event_id: str) -> bytes:
    body = json.dumps({"type": "order.created", "id": event_id}).encode()
    headers = sign(SCHEME, SECRET, body, msg_id=event_id)
    return encode_post("127.0.0.1", "/hooks/shop", headers, body)


def test_metrics_count_outcomes_and_ack_latency(
    strict: httpx.Client, metrics: Metrics
) -> None:
    _post(strict, b'{"type": "a"}', msg_id="m1")
    _post(strict, b'{"type": "a"}', msg_id="m1")
    _post(strict, b'{"type": "a"}', secret=OTHER_SECRET)

    text = strict.get("/metrics").text

    assert 'hooklab_webhooks_received_total{source="shop"} 3' in text
    assert 'hooklab_webhooks_accepted_total{source="shop"} 1' in text
    assert 'hooklab_webhooks_duplicate_total{source="shop"} 1' in text
    assert 'hooklab_webhooks_refused_total{reason="signature"} 1' in text
    assert "hooklab_ack_latency_seconds_count 2" in text
    assert 'hooklab_ack_latency_seconds_bucket{le="+Inf"} 2' in text


@pytest.mark.parametrize(
    ("allow", "proxies", "forwarded", "status"),
    [
        (["10.0.0.0/8"], 0, None, 403),
        (["127.0.0.0/8"], 0, None, 200),
        (["203.0.113.0/24"], 1, "203.0.113.9", 200),
        (["203.0.113.0/24"], 1, "198.51.100.7", 403),
        (["203.0.113.0/24"], 2, "203.0.113.9, 10.1.1.1", 200),
        (["203.0.113.0/24"], 2, "203.0.113.9", 403),
        (["127.0.0.0/8"], 0, "203.0.113.9", 200),
        (["203.0.113.0/24"], 1, "::ffff:203.0.113.9", 200),
        (["203.0.113.0/24"], 1, "::ffff:198.51.100.7", 403),
        (["203.0.113.0/24"], 2, ["203.0.113.9", "10.1.1.1"], 200),
    ],
    ids=[
        "peer-outside",
        "peer-inside",
        "one-proxy-client-inside",
        "one-proxy-client-outside",
        "two-proxies",
        "fewer-hops-than-proxies",
        "untrusted-header-ignored",
        "ipv4-mapped-inside",
        "ipv4-mapped-outside",
        "two-proxies-two-header-lines",
    ],
)
def test_post_allowlist_uses_trusted_proxy_hops(
    ledger: SqliteLedger,
    allow: list[str],
    proxies: int,
    forwarded: str | list[str] | None,
    status: int,
) -> None:
    """A list is several X-Forwarded-For lines, as proxies that add their own send."""
    guard = Guard.build(allow=allow, trusted_proxies=proxies)
    body = b'{"type": "a"}'
    headers = list(sign(SCHEME, SECRET, body, msg_id="m1").items())
    lines = [forwarded] if isinstance(forwarded, str) else forwarded or []
    headers += [("X-Forwarded-For", line) for line in lines]

    with serve_in_thread(_guarded(ledger, guard)) as server:
        answer = httpx.post(f"{server.url}/hooks/shop", content=body, headers=headers)

    assert answer.status_code == status
    if status == 403:
        assert answer.json()["error"] == "address"
        assert ledger.count() == 0


@pytest.mark.parametrize(
    "options",
    [{"allow": ["not-a-network"]}, {"max_body_bytes": 0}, {"trusted_proxies": -1}],
    ids=["bad-cidr", "zero-limit", "negative-proxies"],
)
def test_guard_bad_option_raises_config_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="receiver"):
        Guard.build(**options)  # type: ignore[arg-type]


def test_answer_does_not_wait_for_slow_processing(ledger: SqliteLedger) -> None:
    """A handler that takes seconds must not hold the acknowledgement."""
    release = threading.Event()
    started: list[str] = []

    def slow(event: Event) -> None:
        started.append(event.event_id)
        release.wait(10)

    processor = Processor(ledger, [Pipeline("p", "shop", (slow,))], poll_s=0.01)
    sources = {"shop": Source("shop", Verifier(SCHEME, SECRET))}
    app = create_app(sources, ledger, on_commit=processor.wake)
    processor.start(workers=1)
    try:
        with serve_in_thread(app) as server, httpx.Client(base_url=server.url) as http:
            clock = time.perf_counter()
            first = _post(http, b'{"type": "a"}', msg_id="e1")
            second = _post(http, b'{"type": "a"}', msg_id="e2")
            elapsed = time.perf_counter() - clock
            _wait_until(lambda: started == ["e1"])
    finally:
        release.set()
        processor.stop()

    assert (first.status_code, second.status_code) == (200, 200)
    assert elapsed < 1.0


def _wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def test_post_body_in_several_chunks_is_verified_whole(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    body = json.dumps({"type": "order.created", "data": {"note": "z" * 2000}}).encode()
    headers = sign(SCHEME, SECRET, body, msg_id="msg_chunked")
    chunks = iter([body[:700], body[700:1400], body[1400:]])

    response = client.post("/hooks/shop", content=chunks, headers=headers)

    assert response.status_code == 200
    stored = ledger.delivery("shop", "msg_chunked")
    assert stored is not None and stored.body == body


def test_hook_paths_other_than_one_source_are_not_found(client: httpx.Client) -> None:
    for path in ("/hooks/", "/hooks/shop/extra", "/hooks/shop/", "/hooks//shop"):
        response = client.post(path, content=b"{}")
        assert response.status_code == 404, path
        assert response.json()["error"] == "source", path
    assert client.post("/hooks", content=b"{}").json()["error"] == "source"


def test_get_on_hook_route_names_the_allowed_method(client: httpx.Client) -> None:
    response = client.get("/hooks/shop")

    assert response.headers["allow"] == "POST"
    assert response.json()["error"] == "method"


class _BrokenVerifier(Verifier):
    """A verifier with a bug: it raises something other than SignatureError."""

    def verify(self, *args: object, **kwargs: object) -> Any:
        raise RuntimeError("bug in a verifier")


def test_unexpected_failure_is_answered_500_and_server_stays_up(
    ledger: SqliteLedger, caplog: pytest.LogCaptureFixture
) -> None:
    sources = {
        "broken": Source("broken", _BrokenVerifier(SCHEME, SECRET)),
        "shop": Source("shop", Verifier(SCHEME, SECRET)),
    }
    app = create_app(sources, ledger)

    with (
        serve_in_thread(app) as server,
        httpx.Client(base_url=server.url) as http,
        caplog.at_level(logging.ERROR, logger="hooklab.receiver"),
    ):
        broken = _post(http, b'{"type": "a"}', source="broken")
        fine = _post(http, b'{"type": "a"}', msg_id="after")

    assert broken.status_code == 500
    assert broken.json()["error"] == "internal"
    assert "bug in a verifier" not in broken.text  # details go to the log only
    assert [r.getMessage() for r in caplog.records] == ["webhook.failed"]
    assert fine.status_code == 200
    assert [d.event_id for d in ledger.deliveries()] == ["after"]


def test_client_gone_mid_body_stores_nothing_and_server_stays_up(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    url = httpx.URL(str(client.base_url))
    headers = sign(SCHEME, SECRET, b"x" * 100, msg_id="gone")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    request = (
        f"POST /hooks/shop HTTP/1.1\r\nHost: {url.host}\r\n{head}"
        "Content-Length: 100\r\n\r\n"
    ).encode()

    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(request + b"x" * 10)
    time.sleep(0.2)

    assert client.get("/healthz").json() == {"ok": True}
    assert ledger.count() == 0
    assert _post(client, b'{"type": "a"}', msg_id="next").status_code == 200


def test_url_signing_scheme_verifies_against_the_posted_url(
    ledger: SqliteLedger,
) -> None:
    """Square signs the URL it posts to, so the receiver must rebuild it exactly."""
    sources = {"pay": Source("pay", Verifier("square", "square-test-key"))}
    body = b'{"type": "payment.updated", "event_id": "sq_1"}'

    with serve_in_thread(create_app(sources, ledger)) as server:
        url = f"{server.url}/hooks/pay?shop=7"
        headers = sign("square", "square-test-key", body, url=url)
        good = httpx.post(url, content=body, headers=headers)
        elsewhere = httpx.post(
            f"{server.url}/hooks/pay?shop=8", content=body, headers=headers
        )

    assert good.status_code == 200
    assert elsewhere.status_code == 401
    assert [d.event_id for d in ledger.deliveries()] == ["sq_1"]


def test_zendesk_and_hubspot_deliveries_are_verified_and_stored(
    ledger: SqliteLedger, shared_data: Path
) -> None:
    """Zendesk signs timestamp and body; HubSpot v3 method, URL, body and time."""
    sources = {
        "desk": Source("desk", Verifier("zendesk", "zendesk-signing-secret")),
        "crm": Source("crm", Verifier("hubspot", "hubspot-client-secret")),
    }
    ticket = shared_data / "payloads/zendesk/ticket.agent_assignment_changed.json"
    desk_body = ticket.read_bytes()
    crm_body = (shared_data / "payloads/hubspot/contact.creation.raw.txt").read_bytes()

    with serve_in_thread(create_app(sources, ledger)) as server:
        desk_headers = sign("zendesk", "zendesk-signing-secret", desk_body)
        desk = httpx.post(
            f"{server.url}/hooks/desk", content=desk_body, headers=desk_headers
        )
        crm_url = f"{server.url}/hooks/crm"
        crm_headers = sign("hubspot", "hubspot-client-secret", crm_body, url=crm_url)
        crm = httpx.post(crm_url, content=crm_body, headers=crm_headers)
        replayed_elsewhere = httpx.post(
            f"{server.url}/hooks/crm?x=1", content=crm_body, headers=crm_headers
        )

    assert (desk.status_code, crm.status_code) == (200, 200)
    assert replayed_elsewhere.status_code == 401
    stored = {d.source: d for d in ledger.deliveries()}
    assert stored["desk"].event_id == json.loads(desk_body)["id"]
    assert stored["desk"].event_type == "zen:event-type:ticket.agent_assignment_changed"
    assert stored["crm"].event_id.startswith("hubspot-batch:")  # one per batch
    assert stored["crm"].event_type == "contact.creation"


@pytest.mark.parametrize(("proxies", "status"), [(1, 200), (0, 401)])
def test_url_signing_behind_a_tls_proxy_uses_the_forwarded_scheme(
    ledger: SqliteLedger, proxies: int, status: int
) -> None:
    """HubSpot signs https://...; the proxy ends TLS and says so in X-Forwarded-Proto.

    Only a trusted proxy is believed: without one, the header is the sender's word.
    """
    sources = {"crm": Source("crm", Verifier("hubspot", "hubspot-client-secret"))}
    body = b'[{"eventId": 7, "subscriptionType": "contact.creation"}]'
    public = "https://hooks.example.com/hooks/crm"
    headers = sign("hubspot", "hubspot-client-secret", body, url=public)
    headers |= {
        "host": "hooks.example.com",
        "x-forwarded-proto": "https",
        "x-forwarded-for": "127.0.0.1",
    }

    app = create_app(sources, ledger, guard=Guard(trusted_proxies=proxies))
    with serve_in_thread(app) as server:
        response = httpx.post(f"{server.url}/hooks/crm", content=body, headers=headers)

    assert response.status_code == status


def _slack_post(
    client: httpx.Client, body: bytes, secret: str = "slack-signing-secret"
) -> httpx.Response:
    headers = sign("slack", secret, body)
    headers["content-type"] = "application/json"
    return client.post("/hooks/chat", content=body, headers=headers)


@pytest.fixture
def slack(ledger: SqliteLedger) -> Iterator[httpx.Client]:
    sources = {"chat": Source("chat", Verifier("slack", "slack-signing-secret"))}

    with (
        serve_in_thread(create_app(sources, ledger)) as server,
        httpx.Client(base_url=server.url) as http,
    ):
        yield http


def test_slack_url_verification_echoes_challenge_and_stores_nothing(
    slack: httpx.Client, ledger: SqliteLedger, shared_data: Path
) -> None:
    body = (shared_data / "payloads/slack/url_verification.json").read_bytes()
    challenge = json.loads(body)["challenge"]

    response = _slack_post(slack, body)

    assert response.status_code == 200
    assert response.json() == {"challenge": challenge}
    assert ledger.count() == 0


def test_slack_url_verification_unsigned_is_refused(
    slack: httpx.Client, ledger: SqliteLedger
) -> None:
    body = b'{"type": "url_verification", "challenge": "abc"}'

    forged = _slack_post(slack, body, secret="not-the-secret")
    bare = slack.post("/hooks/chat", content=body)

    assert (forged.status_code, bare.status_code) == (401, 401)
    assert "abc" not in forged.text + bare.text


def test_slack_event_callback_is_stored_by_its_event_id(
    slack: httpx.Client, ledger: SqliteLedger, shared_data: Path
) -> None:
    body = (
        shared_data / "payloads/slack/event_callback.reaction_added.json"
    ).read_bytes()

    response = _slack_post(slack, body)

    assert response.status_code == 200
    assert response.json()["event_id"] == json.loads(body)["event_id"]
    assert ledger.count() == 1


def test_url_verification_shape_from_other_providers_is_an_event(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    """Only Slack's handshake is special; elsewhere the same body is an event."""
    response = _post(client, b'{"type": "url_verification", "challenge": "abc"}')

    assert response.json()["accepted"] is True
    assert ledger.count() == 1


def test_stalled_body_times_out_when_the_app_is_served_again(
    ledger: SqliteLedger,
) -> None:
    """The stall sweep belongs to a loop; a second server gets its own."""
    sources = {"shop": Source("shop", Verifier(SCHEME, SECRET))}
    app = create_app(sources, ledger, guard=Guard.build(body_timeout_s=0.3))

    for _ in range(2):
        with serve_in_thread(app) as server:
            status, answer = _stalled_post(server.url, 100, b"x" * 10)
        assert (status, answer["error"]) == (408, "timeout")


def test_post_type_with_lone_surrogate_is_stored_without_type(
    client: httpx.Client, ledger: SqliteLedger
) -> None:
    """A JSON escape can make a string no database can store; it must not fail."""
    response = _post(client, b'{"type": "\\udfff"}', msg_id="msg_surrogate")

    assert response.status_code == 200
    stored = ledger.delivery("shop", "msg_surrogate")
    assert stored is not None and stored.event_type is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"n": ' + b"9" * 5000 + b"}", "number too long"),
    ],
)
def test_post_signed_json_python_cannot_decode_is_quarantined(
    ledger: SqliteLedger, body: bytes, reason: str
) -> None:
    app = _guarded(ledger, Guard.build())  # the default 1 MiB body limit

    with serve_in_thread(app) as server, httpx.Client(base_url=server.url) as http:
        response = _post(http, body, msg_id="msg_odd")

    assert response.status_code == 202
    assert reason in response.json()["quarantined"]
    assert ledger.delivery("shop", "msg_odd").body == body  # type: ignore[union-attr]


def _metric_values(text: str, metric: str) -> dict[str, int]:
    """The values of one counter in Prometheus text, by label (or "" if none)."""
    values = {}
    for line in text.splitlines():
        if line.startswith(metric):
            name, _, value = line.rpartition(" ")
            label = name[len(metric) :].strip("{}")
            values[label] = int(value)
    return values


def test_metrics_every_delivery_received_ends_in_one_outcome(
    strict: httpx.Client, metrics: Metrics
) -> None:
    _post(strict, b'{"type": "a"}', msg_id="m1")
    _post(strict, b'{"type": "a"}', msg_id="m1")
    _post(strict, b"not json", msg_id="m2")
    _post(strict, b'{"type": "a"}', secret=OTHER_SECRET)
    _post(strict, b"x" * (LIMIT + 1), msg_id="m3")
    strict.post("/hooks/shop", content=b"")
    for n in range(30):  # made-up source names share one label
        _post(strict, b"{}", source=f"scan{n}")
    url = httpx.URL(str(strict.base_url))
    with socket.create_connection((url.host, url.port), timeout=5) as sock:
        sock.sendall(
            b"POST /hooks/shop HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\nab"
        )
    _wait_until(lambda: metrics.value("refused", ("reason", "disconnected")) == 1)

    text = strict.get("/metrics").text
    received = _metric_values(text, "hooklab_webhooks_received_total")
    outcomes = sum(
        sum(_metric_values(text, f"hooklab_webhooks_{kind}_total").values())
        for kind in ("accepted", "duplicate", "quarantined", "refused", "challenges")
    )

    assert received == {'source="shop"': 7, 'source="(unknown)"': 30}
    assert outcomes == 37
    assert 'hooklab_webhooks_refused_total{reason="source"} 30' in text


@pytest.mark.slow
def test_shutdown_answers_a_delivery_still_arriving_503_json(
    ledger: SqliteLedger, caplog: pytest.LogCaptureFixture
) -> None:
    """uvicorn cancels what is left after its 5 s grace; the sender hears why."""
    sources = {"shop": Source("shop", Verifier(SCHEME, SECRET))}
    app = create_app(sources, ledger, guard=Guard.build(body_timeout_s=60))

    uvicorn_errors = logging.getLogger("uvicorn.error")  # does not reach the root
    try:
        with serve_in_thread(app) as server:
            uvicorn_errors.addHandler(caplog.handler)  # after uvicorn set up logging
            url = httpx.URL(server.url)
            sock = socket.create_connection((url.host, url.port), timeout=15)
            sock.sendall(
                b"POST /hooks/shop HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\nab"
            )
            time.sleep(0.2)
    finally:
        uvicorn_errors.removeHandler(caplog.handler)
    with sock:
        raw = _read_response(sock)

    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503")
    assert json.loads(body)["error"] == "shutdown"
    assert ledger.count() == 0
    messages = [record.getMessage() for record in caplog.records]
    assert any("graceful shutdown exceeded" in m for m in messages)  # it was seen
    assert not any("Exception in ASGI application" in m for m in messages)
