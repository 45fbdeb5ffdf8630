"""Re-run the chapters and keep only the outputs nbval compares.

Source notebooks are committed without outputs, except the cells marked
``# NBVAL_CHECK_OUTPUT``: nbval compares those against what is stored, so their
expected text must be in the file. Run after changing a chapter or what it prints:

    .venv/bin/python tools/refresh_notebooks.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import nbformat
import papermill

MARK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def refresh(notebook: Path, scratch: Path) -> None:
    """Execute ``notebook`` on its defaults and store its checked cells' outputs."""
    executed = scratch / notebook.name
    papermill.execute_notebook(
        str(notebook),
        str(executed),
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )
    ran = nbformat.read(executed, as_version=4)
    source = nbformat.read(notebook, as_version=4)

    for cell, done in zip(source.cells, ran.cells, strict=True):
        if cell.cell_type != "code":
            continue
        # nbval refuses stored outputs on a cell without an execution count.
        checked = cell.source.startswith(MARK)
        cell.execution_count = done.execution_count if checked else None
        cell.outputs = done.outputs if checked else []
    nbformat.write(source, notebook)


def main() -> None:
    """Refresh every chapter, or the ones named on the command line."""
    names = sys.argv[1:]
    chapters = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    with tempfile.TemporaryDirectory() as scratch:
        for notebook in chapters:
            if not names or notebook.stem in names:
                print(f"refreshing {notebook.name}", file=sys.stderr)
                refresh(notebook, Path(scratch))


if __name__ == "__main__":
    main()
