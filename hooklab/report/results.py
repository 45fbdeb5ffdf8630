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

__all__ = ["chapter_output_dir", "load_results", "save_results", "to_jsonable"]

_SUFFIX = ".results.json"


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
