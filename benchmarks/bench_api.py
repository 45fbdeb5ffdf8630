"""Walking a paginated events list: hooklab's Client against a bare httpx loop.

Both walk the same 5,000 events (50 pages of 100, cursor pagination) from the same
mock provider on 127.0.0.1, in alternating rounds, in this one run. The bare loop
does what a hand-written poller does: GET, ``raise_for_status``, read ``data`` and
``has_more``, continue after the last id. hooklab adds what the bare loop lacks:
retry decisions, rate-limit header checks, envelope validation and the call log.

Target: the Client's walk takes at most 1.25 times the bare loop's.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import httpx

from hooklab.api import Client, Cursor
from hooklab.mockprovider import MockProvider
from hooklab.servers import serve_in_thread

EVENTS = 5_000
PAGE = 100
ROUNDS = 5
TARGET = 1.25


def bare_walk(base_url: str) -> int:
    """The hand-written poller: count the events of every page."""
    seen, after = 0, None

    with httpx.Client(base_url=base_url, timeout=10) as http:
        while True:
            params: dict[str, Any] = {"limit": PAGE}
            if after:
                params["starting_after"] = after
            response = http.get("/v1/events", params=params)
            response.raise_for_status()
            page = response.json()
            seen += len(page["data"])
            if not page["has_more"]:
                return seen
            after = page["data"][-1]["id"]


def client_walk(base_url: str) -> int:
    """hooklab's Client over the same list."""
    with Client(base_url) as client:
        return sum(1 for _ in client.items("/v1/events", style=Cursor(limit=PAGE)))


def measure() -> dict[str, float]:
    """Median seconds per walk of each contender, alternating rounds."""
    provider = MockProvider()
    for number in range(EVENTS):
        provider.create_event("order.created", {"n": number})
    times: dict[str, list[float]] = {"bare httpx loop": [], "hooklab Client": []}
    walks = {"bare httpx loop": bare_walk, "hooklab Client": client_walk}

    with serve_in_thread(provider.app) as server:
        for _ in range(ROUNDS):
            for name, walk in walks.items():
                started = time.perf_counter()
                assert walk(server.url) == EVENTS
                times[name].append(time.perf_counter() - started)

    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    """Print each contender's time per walk and the ratio against the target."""
    figures = measure()
    for name, seconds in figures.items():
        print(f"   {name:<16} {seconds * 1000:7.1f} ms per walk of {EVENTS} events")

    ratio = figures["hooklab Client"] / figures["bare httpx loop"]
    verdict = "met" if ratio <= TARGET else "MISSED"
    print(f"   hooklab / bare: {ratio:.2f} (target <= {TARGET}: {verdict})")


if __name__ == "__main__":
    main()
