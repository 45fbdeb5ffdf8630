"""Shared fixtures: the embedded example, and the team's shared data folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium through its driver, both from Debian's packages, at 1280 px."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip(
            "chromium and chromedriver are not installed (.ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    with webdriver.Chrome(service=Service(driver), options=options) as chrome:
        yield chrome
