"""Tests for hooklab.metrics: counters and the histogram in Prometheus text."""

from __future__ import annotations

import pytest

from hooklab.metrics import Metrics


def test_render_fresh_metrics_lists_every_counter_at_zero() -> None:
    text = Metrics().render()

    assert "hooklab_events_dead_total 0" in text
    assert "# TYPE hooklab_ack_latency_seconds histogram" in text
    assert text.endswith("\n")


def test_observe_ack_buckets_are_cumulative() -> None:
    metrics = Metrics(buckets=(0.01, 0.1))

    for seconds in (0.005, 0.05, 0.5):
        metrics.observe_ack(seconds)

    text = metrics.render()
    assert 'hooklab_ack_latency_seconds_bucket{le="0.01"} 1' in text
    assert 'hooklab_ack_latency_seconds_bucket{le="0.1"} 2' in text
    assert 'hooklab_ack_latency_seconds_bucket{le="+Inf"} 3' in text
    assert "hooklab_ack_latency_seconds_sum 0.555000" in text


def test_inc_label_value_is_escaped() -> None:
    metrics = Metrics()

    metrics.inc("refused", ("reason", 'a"b'))

    assert 'hooklab_webhooks_refused_total{reason="a\\"b"} 1' in metrics.render()


def test_inc_unknown_counter_raises_key_error() -> None:
    with pytest.raises(KeyError, match="No counter"):
        Metrics().inc("nonsense")
