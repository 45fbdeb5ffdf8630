"""Tests for hooklab.studies.hybrid: the webhook-plus-backfill scenario on loopback."""

from __future__ import annotations

import pytest

from hooklab.api import CallRecord
from hooklab.errors import ConfigError
from hooklab.studies.hybrid import run_hybrid, waited_as_told


@pytest.mark.slow
def test_run_hybrid_2000_events_each_processed_exactly_once() -> None:
    """The issue's scenario: 2,000 events, 10% of webhooks dropped, 5% duplicated,
    an API allowing 10 requests a second. After the backfill every event has run
    exactly once, and the client waited as told after each 429."""
    result = run_hybrid(events=2000, drop=0.10, duplicate=0.05, rate_limit=10.0)
    summary = result.summary

    assert summary.events_emitted == 2000
    assert 150 <= summary.webhooks_lost <= 250  # 10% of 2,000, give or take
    assert summary.webhook_duplicates > 50
    assert summary.recovered_by_backfill == summary.webhooks_lost
    assert summary.delivered_by_webhook + summary.recovered_by_backfill == 2000
    assert summary.missing == 0
    assert summary.processed_more_than_once == 0

    refused = result.calls[result.calls.status == 429]
    assert summary.calls_refused_429 == len(refused) >= 1
    assert (refused.retry_after_s >= 1).all()
    assert (refused.wait_s >= refused.retry_after_s).all()
    assert summary.waited_as_told
    assert summary.calls_made == len(result.calls) == 20 + len(refused)


def test_run_hybrid_small_without_faults_needs_no_backfill() -> None:
    result = run_hybrid(events=50, drop=0.0, duplicate=0.0, rate_limit=100.0)

    assert result.summary.delivered_by_webhook == 50
    assert result.summary.recovered_by_backfill == 0
    assert result.backfill.already_known == 50
    assert result.summary.missing == result.summary.processed_more_than_once == 0


def test_run_hybrid_bad_share_is_config_error() -> None:
    with pytest.raises(ConfigError, match="shares from 0 to 1"):
        run_hybrid(events=10, drop=1.5)


def _call(status: int, started: float, retry_after: float | None = None) -> CallRecord:
    return CallRecord(
        "GET", "/v1/events", status, 1, 0.01, 10, started, retry_after_s=retry_after
    )


@pytest.mark.parametrize(
    ("calls", "expected"),
    [
        pytest.param([_call(200, 0), _call(200, 0.1)], True, id="no-429"),
        pytest.param([_call(429, 0, 1.0), _call(200, 1.02)], True, id="waited"),
        pytest.param([_call(429, 0, 1.0), _call(200, 0.5)], False, id="too-early"),
        pytest.param([_call(429, 0, None), _call(200, 5)], False, id="no-retry-after"),
    ],
)
def test_waited_as_told_measures_the_gap_after_each_429(
    calls: list[CallRecord], expected: bool
) -> None:
    assert waited_as_told(calls) is expected


def test_summary_headline_reads_as_one_sentence() -> None:
    from hooklab.studies.hybrid import HybridSummary

    summary = HybridSummary(300, 267, 33, 17, 33, 0, 0, 3, 0, True, 1.2)

    assert summary.headline() == (
        "Hybrid, live on loopback: 33 of 300 webhooks lost and 17 duplicated; the "
        "backfill recovered 33 with 3 API calls; 0 missing, 0 processed twice."
    )
