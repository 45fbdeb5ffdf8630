"""Display tables for the report."""

from __future__ import annotations

import math

import pandas as pd

from hooklab.report.tables import header, pretty


def test_headers_read_as_words_with_units():
    assert header("p50_s") == "p50 (s)"
    assert header("events_per_day") == "events per day"
    assert header("interval_min") == "interval (min)"
    assert header(3) == 3


def test_pretty_shows_gaps_as_dashes_and_whole_numbers_plainly():
    frame = pd.DataFrame(
        {"p50_s": [0.0031, math.nan], "calls": [1440.0, 7], "method": ["a", "b"]},
        index=pd.Index(["push", "poll 1 min"], name="method_name"),
    )

    page = pretty(frame, digits=3).to_html()

    assert "p50 (s)" in page and "method name" in page
    assert "0.003" in page and "–" in page and "NaN" not in page
    assert "1,440" in page and "1440.0" not in page
