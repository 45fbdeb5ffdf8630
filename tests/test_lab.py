"""Tests for hooklab.studies.lab: one live loopback run, shared by the assertions."""

from __future__ import annotations

import asyncio
import base64

import numpy as np
import pytest
from matplotlib.figure import Figure

from hooklab.errors import ConfigError
from hooklab.studies.lab import (
    LabResult,
    method_label,
    plot_calls,
    plot_latency,
    run_lab,
)

SECRET = "whsec_" + base64.b64encode(b"lab-test-secret-0123456789abcd").decode()
INTERVALS = [60, 300]
EVENTS = 60
MIX = {"order.created": 3, "invoice.paid": 1, "form.submitted": 1}


@pytest.fixture(scope="module")
def result() -> LabResult:
    """One run, started from inside a running event loop as in a Jupyter kernel."""

    async def notebook_cell() -> LabResult:
        return run_lab(
            events=EVENTS,
            event_mix=MIX,
            poll_intervals_s=INTERVALS,
            scale=1200,
            seed=11,
            secret=SECRET,
        )

    return asyncio.run(notebook_cell())


@pytest.mark.slow
def test_run_lab_every_method_detects_every_event_once(result: LabResult) -> None:
    counts = result.records.groupby("method")["event_id"].nunique()

    assert set(counts.index) == {"push", "poll 1 min", "poll 5 min"}
    assert (counts == EVENTS).all()
    assert (result.summary["missed"] == 0).all()
    assert (result.summary["duplicated"] == 0).all()
    assert result.webhook_attempts == EVENTS


@pytest.mark.slow
@pytest.mark.parametrize("interval", INTERVALS, ids=[f"{i}s" for i in INTERVALS])
def test_run_lab_poll_median_is_about_half_the_interval(
    result: LabResult, interval: int
) -> None:
    median = result.summary.loc[method_label(interval), "p50_s"]

    assert median == pytest.approx(interval / 2, rel=0.35)


@pytest.mark.slow
def test_run_lab_push_is_fast_and_costs_one_request_per_event(
    result: LabResult,
) -> None:
    push = result.summary.loc["push"]

    assert push["p50_s"] < 1
    assert push["calls_per_event"] == 0  # no API call: the provider pushes
    assert result.webhook_attempts == result.events  # one webhook request each


@pytest.mark.slow
def test_run_lab_longer_interval_costs_fewer_calls(result: LabResult) -> None:
    per_event = result.summary["calls_per_event"]

    assert per_event["poll 5 min"] < per_event["poll 1 min"]
    assert result.summary.loc["poll 1 min", "empty_poll_share"] >= 0


@pytest.mark.slow
def test_run_lab_secret_never_reaches_results(result: LabResult) -> None:
    text = result.records.to_csv() + result.summary.to_csv() + repr(result)

    assert SECRET not in text
    assert SECRET.removeprefix("whsec_") not in text


@pytest.mark.slow
def test_plots_return_labelled_figures(result: LabResult) -> None:
    latency, calls = plot_latency(result), plot_calls(result)

    assert isinstance(latency, Figure) and isinstance(calls, Figure)
    assert latency.axes[0].get_ylabel() == "latency (s, real-world)"
    assert latency.axes[0].get_yscale() == "log"
    assert calls.axes[0].get_title()


@pytest.mark.parametrize(
    ("interval", "label"),
    [
        pytest.param(60, "poll 1 min", id="minute"),
        pytest.param(600, "poll 10 min", id="ten-minutes"),
        pytest.param(90, "poll 90 s", id="seconds"),
    ],
)
def test_method_label_names_interval(interval: float, label: str) -> None:
    assert method_label(interval) == label


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"events": 0}, id="no-events"),
        pytest.param({"event_mix": {}}, id="empty-mix"),
        pytest.param({"poll_intervals_s": [60, 60]}, id="repeated-interval"),
        pytest.param({"poll_intervals_s": [0]}, id="zero-interval"),
        pytest.param({"scale": 0}, id="zero-scale"),
        pytest.param({"page_size": 101}, id="page-too-big"),
    ],
)
def test_run_lab_bad_arguments_raise_config_error(overrides: dict[str, object]) -> None:
    arguments: dict[str, object] = {
        "events": 5,
        "event_mix": MIX,
        "poll_intervals_s": INTERVALS,
        "scale": 1200,
        "seed": 1,
    }
    arguments.update(overrides)

    with pytest.raises(ConfigError, match="The lab cannot run"):
        run_lab(**arguments)  # type: ignore[arg-type]


def test_records_say_when_each_event_was_detected_and_what_it_cost() -> None:
    """Per event: created, detected, how, calls spent; polls' calls add up."""
    result = run_lab(
        events=30,
        event_mix={"order.created": 1.0},
        poll_intervals_s=[300.0],
        scale=1200.0,
        seed=5,
    )
    records = result.records

    assert {"created_at", "detected_at", "method", "calls"} <= set(records.columns)
    waited = (records["detected_at"] - records["created_at"]).dt.total_seconds()
    assert np.allclose(waited, records["latency_s"], atol=1e-3)
    push = records[records["method"] == "push"]
    assert (push["calls"] == 0).all()  # API calls: a webhook costs none
    poll = records[records["method"] == "poll 5 min"]
    # The poller stops at the poll that finds the last event, so every call it
    # made is charged to some event.
    made = result.summary.loc["poll 5 min", "calls"]
    assert poll["calls"].sum() == pytest.approx(made)
