"""Shared fixtures: the embedded example, and the team's shared data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from hooklab.spec import Engagement, example_path, load_engagement

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def example() -> Engagement:
    """The Acme Shop engagement that `hooklab audit` runs by default."""
    return load_engagement(example_path())


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or a skip that says why it is missing."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent on this machine")
    return SHARED_DATA
