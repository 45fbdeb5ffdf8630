"""Tests for hooklab.sender: one attempt (mock transport) and simulated providers.

The simulations deliver to a real receiver on loopback, wrapped in a FaultyEndpoint.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from hooklab.errors import ConfigError
from hooklab.ledger import Delivery, SqliteLedger
from hooklab.providers import preset
from hooklab.receiver import Source, create_app
from hooklab.sender import Attempt, Faults, FaultyEndpoint, Schedule, deliver, simulate
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier, verify

SECRET = "whsec_" + base64.b64encode(b"sender-test-key-0123456789abc").decode()
URL = "http://127.0.0.1:9/hooks/shop"


def _run(handler: httpx.MockTransport) -> Attempt:
    async def send() -> Attempt:
        async with httpx.AsyncClient(transport=handler) as client:
            return await deliver(
                client,
                URL,
                b'{"type":"t"}',
                scheme="standard-webhooks",
                secret=SECRET,
                msg_id="evt_1",
            )

    return asyncio.run(send())


def test_deliver_posts_verifiable_signed_body() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    attempt = _run(httpx.MockTransport(handler))

    [request] = seen
    verified = verify("standard-webhooks", SECRET, request.headers, request.content)
    assert verified.event_id == "evt_1"
    assert (attempt.status_code, attempt.error, attempt.ok) == (200, None, True)
    assert attempt.started_at <= attempt.finished_at


def test_deliver_server_error_is_recorded_not_raised() -> None:
    attempt = _run(httpx.MockTransport(lambda request: httpx.Response(503)))

    assert attempt.status_code == 503
    assert not attempt.ok


def test_deliver_connection_failure_is_recorded_with_error() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    attempt = _run(httpx.MockTransport(refuse))

    assert attempt.status_code is None
    assert attempt.error == "ConnectError: connection refused"
    assert SECRET not in repr(attempt)


RECEIVER_SECRET = "whsec_" + base64.b64encode(b"simulate-test-key-0123456789a").decode()
FAST = 1e6  # simulated seconds per real second: hours of retries in microseconds


def _events(count: int) -> list[tuple[str, bytes]]:
    return [
        (f"msg_{n}", json.dumps({"type": "t", "n": n}).encode()) for n in range(count)
    ]


def _simulate_into(
    tmp_path: Path,
    events: list[tuple[str, bytes]],
    schedule: Schedule,
    *,
    faults: Faults | None = None,
    concurrency: int = 8,
    **endpoint: Any,
) -> tuple[list[Attempt], list[Delivery]]:
    """Run ``simulate`` against a real receiver behind a FaultyEndpoint."""
    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        sources = {
            "shop": Source("shop", Verifier("standard-webhooks", RECEIVER_SECRET))
        }
        app = FaultyEndpoint(create_app(sources, ledger), **endpoint)
        with serve_in_thread(app) as server:
            attempts = asyncio.run(
                simulate(
                    f"{server.url}/hooks/shop",
                    events,
                    scheme="standard-webhooks",
                    secret=RECEIVER_SECRET,
                    schedule=schedule,
                    faults=faults,
                    time_scale=FAST,
                    concurrency=concurrency,
                )
            )
        return attempts, ledger.deliveries()


def test_simulate_failing_endpoint_retries_on_svix_schedule_until_ok(
    tmp_path: Path,
) -> None:
    schedule = Schedule.of(preset("svix"))

    attempts, stored = _simulate_into(tmp_path, _events(3), schedule, fail_first=2)

    by_msg = {m: [a for a in attempts if a.msg_id == m] for m, _ in _events(3)}
    for log in by_msg.values():
        assert [(a.attempt, a.status_code) for a in log] == [
            (1, 503),
            (2, 503),
            (3, 200),
        ]
        gaps = [b.started_at - a.started_at for a, b in itertools.pairwise(log)]
        assert all(gap >= 0 for gap in gaps)
    assert len(stored) == 3


def test_simulate_always_failing_gives_up_after_max_attempts(tmp_path: Path) -> None:
    schedule = Schedule.of(preset("slack"))

    attempts, stored = _simulate_into(tmp_path, _events(1), schedule, fail_rate=1.0)

    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    assert not any(a.ok for a in attempts)
    assert stored == []


def test_simulate_give_up_time_stops_retries_early() -> None:
    schedule = Schedule((10, 20, 40), response_timeout_s=1, give_up_after_s=25)

    async def run() -> list[Attempt]:
        return await simulate(
            "http://127.0.0.1:9/hooks/none",
            _events(1),
            scheme="standard-webhooks",
            secret=RECEIVER_SECRET,
            schedule=schedule,
            time_scale=FAST,
        )

    attempts = asyncio.run(run())

    assert [a.attempt for a in attempts] == [1, 2]
    assert all(a.error and "ConnectError" in a.error for a in attempts)


def test_simulate_duplicates_are_acknowledged_as_duplicates(tmp_path: Path) -> None:
    schedule = Schedule((), response_timeout_s=5)

    attempts, stored = _simulate_into(
        tmp_path, _events(5), schedule, faults=Faults(duplicate=1.0)
    )

    copies = [a for a in attempts if a.trigger == "duplicate"]
    assert len(copies) == 5 and all(a.ok for a in copies)
    assert all('"duplicate":true' in a.response for a in copies)
    assert len(stored) == 5


def test_simulate_dropped_attempts_are_retried(tmp_path: Path) -> None:
    schedule = Schedule((1, 1, 1, 1, 1, 1), response_timeout_s=5)

    attempts, stored = _simulate_into(
        tmp_path, _events(20), schedule, faults=Faults(drop=0.4, seed=3)
    )

    dropped = [a for a in attempts if a.error and "Dropped" in a.error]
    assert dropped
    assert len(stored) == len({a.msg_id for a in attempts if a.ok})


def test_simulate_reorder_window_shuffles_first_attempts(tmp_path: Path) -> None:
    schedule = Schedule((), response_timeout_s=5)
    events = _events(20)

    # One at a time, so the store's order is the send order: with several in
    # flight, a slow first-window delivery could land after a second-window one.
    attempts, stored = _simulate_into(
        tmp_path,
        events,
        schedule,
        faults=Faults(reorder_window=10, seed=1),
        concurrency=1,
    )

    sent = [d.event_id for d in stored]
    assert sorted(sent) == sorted(m for m, _ in events)
    assert sent != [m for m, _ in events]
    assert set(sent[:10]) == {f"msg_{n}" for n in range(10)}


def test_simulate_slow_endpoint_times_out_at_response_timeout(tmp_path: Path) -> None:
    schedule = Schedule((), response_timeout_s=0.1)

    attempts, _ = _simulate_into(tmp_path, _events(1), schedule, delay_s=0.4)

    [attempt] = attempts
    assert attempt.error is not None and "Timeout" in attempt.error
    assert attempt.finished_at - attempt.started_at < 0.35


def test_schedule_of_unpublished_schedule_asks_for_it() -> None:
    with pytest.raises(ConfigError, match="stripe does not publish its retry_delays_s"):
        Schedule.of(preset("stripe"))

    given = Schedule.of(preset("stripe"), retry_delays_s=[60], response_timeout_s=10)
    assert (given.retry_delays_s, given.give_up_after_s) == ((60,), 259_200)


def test_attempt_to_log_has_delivery_log_fields(shared_data: Path) -> None:
    """A simulated attempt has the keys of a real Svix delivery-log row."""
    published = json.loads(
        (shared_data / "delivery_logs/svix_list_attempts.json").read_text()
    )
    row = Attempt("msg_1", "http://127.0.0.1/h", 1.0, 1.25, 503, None, 2).to_log()

    assert set(published["data"][0]) - {"endpointId"} == set(row)
    assert (row["status"], row["statusText"], row["responseDurationMs"]) == (
        2,
        "fail",
        250,
    )


@pytest.mark.parametrize(
    "options",
    [{"drop": 1.5}, {"duplicate": -0.1}, {"reorder_window": 0}],
    ids=["drop-over-one", "negative-duplicate", "zero-window"],
)
def test_faults_out_of_range_raise_config_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Faults(**options)
