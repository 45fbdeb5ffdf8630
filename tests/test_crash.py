"""kill -9 of a real ``hooklab serve`` mid-load, then a restart on the same ledger."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hooklab.ledger import SqliteLedger
from hooklab.loadgen import LoadResult, encode_post, run_load
from hooklab.signing import sign

SECRET = "whsec_" + base64.b64encode(b"crash-test-key-0123456789abcd").decode()
SCHEME = "standard-webhooks"
TESTS = Path(__file__).resolve().parent
DELIVERIES = 6000
KILL_AFTER_EFFECTS = 30


@contextmanager
def _serve(ledger: Path, effects: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``hooklab serve`` as a real process on a free loopback port."""
    env = {
        **os.environ,
        "CRASH_TEST_SECRET": SECRET,
        "HOOKLAB_EFFECTS_FILE": str(effects),
        "HOOKLAB_EFFECTS_DELAY": "0.003",
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        str(Path(sys.executable).with_name("hooklab")),
        "serve",
        "--source",
        f"shop:{SCHEME}:CRASH_TEST_SECRET",
        "--action",
        "_kill_effects:append",
        "--ledger",
        str(ledger),
        "--port",
        "0",
        "--lease",
        "1",
    ]
    with log.open("w") as stderr:
        process = subprocess.Popen(command, env=env, stderr=stderr)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=20)


def _port(log: Path, process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """The port ``hooklab serve`` announced on stderr."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if "listening on http://127.0.0.1:" in line:
                return int(line.rsplit(":", 1)[1])
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)
    raise AssertionError(f"hooklab serve did not start: {log.read_text()}")


def _requests() -> tuple[list[str], list[bytes]]:
    ids = [f"evt_{n:05d}" for n in range(DELIVERIES)]
    encoded = []
    for event_id in ids:
        body = json.dumps({"type": "order.created", "data": {"id": event_id}}).encode()
        headers = sign(SCHEME, SECRET, body, msg_id=event_id)
        encoded.append(encode_post("127.0.0.1", "/hooks/shop", headers, body))
    return ids, encoded


def _effects(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the ledger writer, for serve)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _wait_gone(pids: list[int], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while any(Path(f"/proc/{pid}").exists() for pid in pids):
        assert time.monotonic() < deadline, f"{pids} outlived their parent"
        time.sleep(0.05)


async def _load_then_kill(
    port: int, requests: list[bytes], process: subprocess.Popen[bytes], effects: Path
) -> tuple[LoadResult, list[int]]:
    """Drive load; once processing is under way, SIGKILL the server (not its
    children, as a crash would not). Return what was answered and the children."""
    children: list[int] = []

    async def killer() -> None:
        deadline = time.monotonic() + 30
        while len(_effects(effects)) < KILL_AFTER_EFFECTS:
            assert time.monotonic() < deadline, "processing never got under way"
            await asyncio.sleep(0.01)
        children.extend(_children(process.pid))
        os.kill(process.pid, signal.SIGKILL)

    load = run_load("127.0.0.1", port, requests, connections=16, timeout_s=5)
    result, _ = await asyncio.gather(load, killer())
    return result, children


def _wait_processed(ledger: SqliteLedger, timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = ledger.stats()
        if stats["pending"] + stats["processing"] + stats["failed"] == 0:
            return stats
        time.sleep(0.1)
    raise AssertionError(f"events still waiting after {timeout} s: {ledger.stats()}")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="finds children in /proc")
def test_serve_killed_mid_load_keeps_every_ack_and_reruns_only_mid_processing(
    tmp_path: Path,
) -> None:
    path, effects = tmp_path / "ledger.db", tmp_path / "effects.log"
    ids, requests = _requests()

    with _serve(path, effects, tmp_path / "first.log") as first:
        port = _port(tmp_path / "first.log", first)
        started = (tmp_path / "first.log").read_text()
        assert f"POST http://127.0.0.1:{port}/hooks/shop ({SCHEME})" in started
        result, children = asyncio.run(_load_then_kill(port, requests, first, effects))
        assert first.wait(timeout=10) == -signal.SIGKILL
    # The ledger writer commits what it was sent and exits: it does not outlive
    # the server (and has stopped writing before the ledger is read).
    assert children, "serve runs its ledger writer in a process of its own"
    _wait_gone(children)

    acked = {ids[i] for i, status in enumerate(result.statuses) if status == 200}
    assert 0 < len(acked) < DELIVERIES, "the kill did not land mid-load"
    with SqliteLedger(path) as ledger:
        stored = {event.event_id for event in ledger.events()}
        mid = {event.event_id for event in ledger.events(status="processing")}
    assert acked <= stored
    before_restart = Counter(line.split()[0] for line in _effects(effects))

    with (
        _serve(path, effects, tmp_path / "second.log") as second,
        SqliteLedger(path) as ledger,
    ):
        _port(tmp_path / "second.log", second)
        stats = _wait_processed(ledger)

    assert stats["done"] == len(stored)
    runs = Counter(line.split()[0] for line in _effects(effects))
    assert set(runs) == {f"shop:{event_id}" for event_id in stored}
    twice = {key for key, count in runs.items() if count > 1}
    assert twice <= {f"shop:{event_id}" for event_id in mid}
    assert max(runs.values()) <= 2
    assert all(before_restart[key] == 1 for key in twice)
