"""Chapter results: the machine-readable JSON each notebook leaves beside itself.

A chapter calls :func:`save_results` with its key figures; the report is assembled
from those files, and other tools can read them without parsing notebooks.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hooklab.errors import ConfigError

__all__ = [
    "LAB_SIZES",
    "chapter_output_dir",
    "check_parameters",
    "load_results",
    "save_results",
    "to_jsonable",
]

_SUFFIX = ".results.json"


#: The lab sizes a chapter accepts, as ``hooklab audit --lab-size`` does.
LAB_SIZES = (10, 100_000)


def check_parameters(*, seed: object, lab_size: object) -> None:
    """Refuse chapter parameters the audit would refuse (papermill passes any).

    ``-p seed abc`` or ``-p lab_size 5`` otherwise fail deep in a chapter, or
    give percentiles of five samples.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a whole number of 0 or more, got {seed!r}.")
    low, high = LAB_SIZES
    if isinstance(lab_size, bool) or not isinstance(lab_size, int):
        raise ConfigError(f"lab_size must be a whole number, got {lab_size!r}.")
    if not low <= lab_size <= high:
        raise ConfigError(
            f"lab_size must be between {low} and {high:,} webhooks, got {lab_size}."
        )


def chapter_output_dir(output_dir: str | Path | None) -> Path:
    """The folder a chapter writes to; a fresh temporary one when none is given.

    Notebooks opened by hand or run by nbval have no output folder; they still write
    their results, just somewhere that does not clutter the checkout.
    """
    if not output_dir:
        return Path(tempfile.mkdtemp(prefix="hooklab-chapter-"))
    path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_results(
    output_dir: str | Path, chapter: str, results: Mapping[str, Any]
) -> Path:
    """Write ``<output_dir>/<chapter>.results.json`` and return its path."""
    path = Path(output_dir) / f"{chapter}{_SUFFIX}"
    text = json.dumps(to_jsonable(dict(results)), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load_results(folder: str | Path) -> dict[str, dict[str, Any]]:
    """Every chapter's results in ``folder``, keyed by chapter name."""
    found = {}
    for path in sorted(Path(folder).glob(f"*{_SUFFIX}")):
        found[path.name.removesuffix(_SUFFIX)] = json.loads(path.read_text("utf-8"))
    return found


def to_jsonable(value: Any) -> Any:
    """``value`` with numpy, pandas and date types turned into plain JSON types.

    Non-finite numbers become None, so the files stay strict JSON.
    """
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, pd.DataFrame):
        return to_jsonable(value.reset_index().to_dict(orient="records"))
    if isinstance(value, pd.Series):
        return to_jsonable(value.to_dict())
    if isinstance(value, list | tuple | np.ndarray):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value
