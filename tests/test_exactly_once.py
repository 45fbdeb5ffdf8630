"""5,000 deliveries with 10% duplicates in shuffled order: each event runs once."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from hooklab.actions import Event
from hooklab.ledger import SqliteLedger
from hooklab.loadgen import encode_post, run_load
from hooklab.processing import Pipeline, Processor
from hooklab.receiver import Source, create_app
from hooklab.servers import serve_in_thread
from hooklab.signing import Verifier, sign

SECRET = "whsec_" + base64.b64encode(b"exactly-once-test-key-0123456").decode()
SCHEME = "standard-webhooks"


class Tally:
    """A thread-safe count of how often each idempotency key was processed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: Counter[str] = Counter()

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.runs[event.idempotency_key] += 1


def _deliveries(seed: int = 11) -> tuple[list[str], list[bytes]]:
    """4,500 events plus 500 repeats of some of them, shuffled."""
    rng = random.Random(seed)
    unique = [f"evt_{n:05d}" for n in range(4500)]
    ids = unique + rng.choices(unique, k=500)
    rng.shuffle(ids)

    encoded = []
    for event_id in ids:
        body = json.dumps({"type": "order.created", "data": {"id": event_id}}).encode()
        headers = sign(SCHEME, SECRET, body, msg_id=event_id)
        encoded.append(encode_post("127.0.0.1", "/hooks/shop", headers, body))
    return ids, encoded


@pytest.mark.slow
def test_five_thousand_with_duplicates_shuffled_each_processed_once(
    tmp_path: Path,
) -> None:
    ids, requests = _deliveries()
    tally = Tally()

    with SqliteLedger(tmp_path / "ledger.db") as ledger:
        processor = Processor(ledger, [Pipeline("p", "shop", (tally,))], poll_s=0.05)
        sources = {"shop": Source("shop", Verifier(SCHEME, SECRET))}
        app = create_app(sources, ledger, on_commit=processor.wake)
        processor.start(workers=2)
        try:
            with serve_in_thread(app) as server:
                result = asyncio.run(run_load(server.host, server.port, requests))
            deadline = time.monotonic() + 60
            while ledger.stats()["done"] < 4500 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            processor.stop()
        stats = ledger.stats()
        repeats = sum(d.repeats for d in ledger.deliveries())

    assert set(result.statuses) == {200}
    assert stats["done"] == 4500 == len(set(ids))
    assert set(tally.runs) == {f"shop:{event_id}" for event_id in set(ids)}
    assert set(tally.runs.values()) == {1}
    assert repeats == 500
