"""Tables as a client reads them: plain headers with units, no NaN, tidy numbers."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

__all__ = ["header", "pretty"]

_UNITS = {"_s": " (s)", "_min": " (min)", "_ms": " (ms)"}


def header(name: Any) -> Any:
    """``p50_s`` -> ``p50 (s)``, ``events_per_day`` -> ``events per day``."""
    if not isinstance(name, str):
        return name
    for suffix, unit in _UNITS.items():
        if name.endswith(suffix):
            return name.removesuffix(suffix).replace("_", " ") + unit
    return name.replace("_", " ")


def pretty(frame: pd.DataFrame, digits: int = 2) -> Styler:
    """``frame`` for display: readable headers, a dash for gaps, rounded numbers.

    Whole numbers show without decimals and large ones with thousands separators.
    """
    shown = frame.rename(columns=header)
    shown.index = shown.index.rename(header(frame.index.name))
    return shown.style.format(lambda value: _cell(value, digits))


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"
