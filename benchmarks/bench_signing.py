"""Verifying a 2 KB Standard Webhooks delivery: hooklab against its two baselines.

Three contenders check the same signed delivery in the same run: hooklab's
``Verifier`` (the receiver's request path), the ``standardwebhooks`` package from PyPI
(the specification's reference library, with JSON parsing turned off) and a bare
``hmac.new(...)`` plus ``hmac.compare_digest`` over the signed content, which parses
no header and checks no timestamp. Rounds alternate between the contenders, so a
noisy neighbour slows all three alike; each figure is the median of the rounds.

Targets: hooklab at most 0.7 times the package's time and at most 1.5 times the bare
HMAC's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import statistics
import time
import timeit
from collections.abc import Callable

import standardwebhooks

from hooklab.signing import Verifier, sign

BODY_BYTES = 2048
ROUNDS = 31
CALLS_PER_ROUND = 5_000
TARGET_VS_PACKAGE = 0.7
TARGET_VS_BARE = 1.5


def delivery_body(size: int = BODY_BYTES) -> bytes:
    """A JSON order event padded to exactly ``size`` bytes."""
    event = {
        "type": "order.created",
        "data": {"id": 1001, "currency": "USD", "lines": [], "note": ""},
    }
    body = json.dumps(event, separators=(",", ":")).encode()
    event["data"]["note"] = "x" * (size - len(body))  # type: ignore[index]
    return json.dumps(event, separators=(",", ":")).encode()


def contenders() -> dict[str, Callable[[], object]]:
    """The three ways to verify one delivery, each already checked to accept it."""
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    body = delivery_body()
    now = int(time.time())
    headers = sign("standard-webhooks", secret, body, timestamp=now, msg_id="msg_1")

    verifier = Verifier("standard-webhooks", secret)
    package = standardwebhooks.Webhook(secret)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    given = base64.b64decode(headers["webhook-signature"].removeprefix("v1,"))

    def bare() -> bool:
        signed = f"msg_1.{now}.".encode() + body
        expected = hmac.new(key, signed, hashlib.sha256).digest()
        return hmac.compare_digest(expected, given)

    runs: dict[str, Callable[[], object]] = {
        "hooklab Verifier": lambda: verifier.verify(headers, body),
        "standardwebhooks": lambda: package.verify(body, headers, json_parse=False),
        "bare hmac": bare,
    }
    assert bare() and verifier.verify(headers, body).secret_index == 0
    package.verify(body, headers, json_parse=False)  # raises if refused
    return runs


def measure(runs: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median microseconds per call of each contender, over alternating rounds."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, run in runs.items():
            seconds = timeit.timeit(run, number=CALLS_PER_ROUND)
            samples[name].append(seconds / CALLS_PER_ROUND * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    """Print each contender's figure and hooklab's two ratios against their targets."""
    figures = measure(contenders())
    for name, micros in figures.items():
        print(f"   {name:<18} {micros:6.2f} us per verification of a 2 KB delivery")

    ours = figures["hooklab Verifier"]
    for baseline, target in (
        ("standardwebhooks", TARGET_VS_PACKAGE),
        ("bare hmac", TARGET_VS_BARE),
    ):
        ratio = ours / figures[baseline]
        verdict = "met" if ratio <= target else "MISSED"
        print(f"   hooklab / {baseline}: {ratio:.2f} (target <= {target}: {verdict})")


if __name__ == "__main__":
    main()
