"""Counters and a latency histogram, rendered in the Prometheus text format.

The receiver counts what it received, accepted, refused (by reason) and saw twice,
and times each acknowledgement; the workers count what they processed, retried,
found stale and buried. ``GET /metrics`` serves ``Metrics.render()``.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Sequence

__all__ = ["ACK_BUCKETS_S", "Metrics"]

#: Upper bounds (seconds) of the acknowledgement-latency histogram's buckets.
ACK_BUCKETS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

_COUNTERS: dict[str, tuple[str, str]] = {
    "received": ("hooklab_webhooks_received_total", "Deliveries that reached a hook."),
    "accepted": ("hooklab_webhooks_accepted_total", "New events stored durably."),
    "refused": (
        "hooklab_webhooks_refused_total",
        "Deliveries refused or abandoned (disconnected, shutdown), by reason.",
    ),
    "duplicates": ("hooklab_webhooks_duplicate_total", "Repeats of a stored event."),
    "quarantined": (
        "hooklab_webhooks_quarantined_total",
        "Signed deliveries stored undecoded.",
    ),
    "challenges": (
        "hooklab_webhooks_challenges_total",
        "Slack url_verification handshakes answered (not events).",
    ),
    "processed": ("hooklab_events_processed_total", "Events whose actions all ran."),
    "retried": ("hooklab_events_retried_total", "Failed attempts scheduled again."),
    "stale": ("hooklab_events_stale_total", "Events older than the state applied."),
    "ignored": ("hooklab_events_ignored_total", "Events no workflow handles."),
    "dead": ("hooklab_events_dead_total", "Events that ran out of attempts."),
}
_LATENCY = "hooklab_ack_latency_seconds"


class Metrics:
    """Thread-safe counters (with one optional label each) and the ack histogram."""

    def __init__(self, buckets: Sequence[float] = ACK_BUCKETS_S) -> None:
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._counts: dict[str, dict[tuple[str, str], int]] = defaultdict(dict)
        self._bucket_counts = [0] * (len(self.buckets) + 1)
        self._latency_sum = 0.0

    def inc(self, name: str, label: tuple[str, str] = ("", ""), by: int = 1) -> None:
        """Add ``by`` to counter ``name`` (a key of the table above), per label."""
        if name not in _COUNTERS:
            raise KeyError(f"No counter is called {name!r}.")

        with self._lock:
            counts = self._counts[name]
            counts[label] = counts.get(label, 0) + by

    def observe_ack(self, seconds: float) -> None:
        """Count one acknowledgement that took ``seconds``."""
        index = bisect.bisect_left(self.buckets, seconds)

        with self._lock:
            self._bucket_counts[index] += 1
            self._latency_sum += seconds

    def value(self, name: str, label: tuple[str, str] = ("", "")) -> int:
        """The current value of one counter for one label (0 if never counted)."""
        with self._lock:
            return self._counts[name].get(label, 0)

    def render(self) -> str:
        """Every counter and the histogram, in the Prometheus text format 0.0.4."""
        with self._lock:
            lines = [line for name in _COUNTERS for line in self._counter_lines(name)]
            lines += self._histogram_lines()

        return "\n".join(lines) + "\n"

    def _counter_lines(self, name: str) -> list[str]:
        metric, help_text = _COUNTERS[name]
        lines = [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        counts = self._counts[name] or {("", ""): 0}

        for (key, value), count in sorted(counts.items()):
            labels = f'{{{key}="{_escape(value)}"}}' if key else ""
            lines.append(f"{metric}{labels} {count}")
        return lines

    def _histogram_lines(self) -> list[str]:
        lines = [
            f"# HELP {_LATENCY} Time from request start to acknowledgement.",
            f"# TYPE {_LATENCY} histogram",
        ]
        running = 0

        for bound, count in zip(self.buckets, self._bucket_counts, strict=False):
            running += count
            lines.append(f'{_LATENCY}_bucket{{le="{bound:g}"}} {running}')
        total = running + self._bucket_counts[-1]
        lines.append(f'{_LATENCY}_bucket{{le="+Inf"}} {total}')
        lines.append(f"{_LATENCY}_sum {self._latency_sum:.6f}")
        lines.append(f"{_LATENCY}_count {total}")
        return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
