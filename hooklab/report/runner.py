"""Run the workbook headlessly: every chapter in order, then one HTML report.

``run_audit`` is what ``hooklab audit`` calls. It executes ``notebooks/NN_*.ipynb``
with papermill, each with the same parameters, into
``reports/<client-slug>/<UTC timestamp>/``, and assembles ``report.html`` there.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from hooklab import __version__
from hooklab.errors import ChapterError, ConfigError, NotebookRunError
from hooklab.report.html import build_report
from hooklab.report.results import save_results
from hooklab.spec import Engagement, engagement_hash, example_path, load_engagement

__all__ = [
    "KERNEL_NAME",
    "AuditResult",
    "ChapterRun",
    "check_parameters_cell",
    "discover_chapters",
    "execute_chapter",
    "notebooks_dir",
    "run_audit",
    "scrub_secrets",
]

logger = logging.getLogger(__name__)

#: The kernel every chapter runs on; ``make`` registers it inside .venv.
KERNEL_NAME = "python3"

#: Called as ``progress(index, total, chapter, state, seconds)``; state is
#: "start", "done" or "failed".
Progress = Callable[[int, int, str, str, float], None]


@dataclass(frozen=True)
class ChapterRun:
    """One executed chapter."""

    name: str
    notebook: Path
    seconds: float


@dataclass(frozen=True)
class AuditResult:
    """Where an audit wrote its output, and what it ran."""

    folder: Path
    report: Path
    chapters: list[ChapterRun] = field(default_factory=list)


def notebooks_dir() -> Path:
    """The workbook's chapters, ``notebooks/`` in the checkout."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def discover_chapters(folder: Path) -> list[Path]:
    """The chapters in ``folder``: ``NN_name.ipynb`` files in order."""
    chapters = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb") if p.is_file())
    if not chapters:
        raise ChapterError(f"{folder} holds no chapters (files named NN_*.ipynb).")
    return chapters


def check_parameters_cell(notebook: Path) -> None:
    """Refuse a notebook whose defaults papermill could not override."""
    try:
        nb = nbformat.read(notebook, as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and OS errors alike
        raise ChapterError(
            f"{notebook} cannot be read as a Jupyter notebook: {exc}"
        ) from None
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return
    raise ChapterError(
        f"{notebook.name} has no cell tagged 'parameters', so the audit's parameters "
        "cannot reach it and it would run on its own defaults. Tag the cell that "
        "holds its defaults with 'parameters' (View > Cell Toolbar > Tags)."
    )


def run_audit(
    engagement_path: str | Path | None = None,
    *,
    reports_dir: str | Path = "reports",
    chapters_dir: str | Path | None = None,
    seed: int = 7,
    lab_size: int = 300,
    progress: Progress | None = None,
) -> AuditResult:
    """Run every chapter on the engagement and write the report; return where."""
    source = Path(engagement_path) if engagement_path else example_path()
    engagement = load_engagement(source)
    chapters = discover_chapters(
        Path(chapters_dir) if chapters_dir else notebooks_dir()
    )
    for notebook in chapters:
        check_parameters_cell(notebook)

    started = datetime.now(UTC)
    folder = _new_folder(Path(reports_dir), engagement, started)
    parameters = {
        "engagement_path": str(source.resolve()),
        "output_dir": str(folder.resolve()),
        "seed": seed,
        "lab_size": lab_size,
    }

    runs = []
    for index, notebook in enumerate(chapters, start=1):
        runs.append(
            execute_chapter(
                notebook, folder, parameters, (index, len(chapters)), progress
            )
        )

    inputs = {
        "engagement_file": str(source),
        "engagement_sha256": engagement_hash(source),
        "hooklab_version": __version__,
        "python": platform.python_version(),
        "seed": seed,
        "lab_size": lab_size,
        "started_utc": started.isoformat(timespec="seconds"),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "chapters": {run.name: round(run.seconds, 2) for run in runs},
    }
    save_results(folder, "inputs", inputs)
    report = build_report(folder, [run.notebook for run in runs], inputs, engagement)
    scrub_secrets(folder, _secret_values(engagement))
    return AuditResult(folder=folder, report=report, chapters=runs)


def _new_folder(reports_dir: Path, engagement: Engagement, started: datetime) -> Path:
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    folder = reports_dir / engagement.client.folder_name / stamp
    suffix = 1
    while folder.exists():  # two audits in the same second get distinct folders
        suffix += 1
        folder = reports_dir / engagement.client.folder_name / f"{stamp}-{suffix}"
    try:
        folder.mkdir(parents=True)
    except OSError as exc:  # under a file, read-only, or a pseudo file system
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"The reports folder {folder} cannot be created under {reports_dir}: "
            f"{reason}. Choose a writable folder with --reports."
        ) from exc
    return folder


def execute_chapter(
    notebook: Path,
    folder: Path,
    parameters: Mapping[str, Any],
    position: tuple[int, int] = (1, 1),
    progress: Progress | None = None,
) -> ChapterRun:
    """Run one chapter into ``folder`` with ``parameters``, kept as Python values.

    papermill writes the values into the notebook as Python literals, so lists and
    mappings arrive as lists and mappings, never as strings to parse again.
    """
    # Imported here: papermill pulls in most of Jupyter, which the rest of hooklab's
    # commands do not need.
    import papermill
    from jupyter_client.kernelspec import NoSuchKernel

    check_parameters_cell(notebook)
    index, total = position
    name = notebook.stem
    output = folder / notebook.name
    if progress:
        progress(index, total, name, "start", 0.0)
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=dict(parameters),
            kernel_name=KERNEL_NAME,
            language="python",
            # The kernel's own start-up warnings would break the progress lines.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
            cwd=str(notebook.parent),
            progress_bar=False,
            log_output=False,
        )
    except papermill.PapermillExecutionError as exc:
        if progress:
            progress(index, total, name, "failed", time.perf_counter() - start)
        raise NotebookRunError(_describe_failure(name, exc, output)) from None
    except NoSuchKernel:
        raise NotebookRunError(
            f"The Jupyter kernel {KERNEL_NAME!r} that the chapters name is not "
            "registered. Run `make report` or `make test`, which register it."
        ) from None

    seconds = time.perf_counter() - start
    logger.info("audit.chapter_done %s %.1fs", name, seconds)
    if progress:
        progress(index, total, name, "done", seconds)
    return ChapterRun(name=name, notebook=output, seconds=seconds)


def _describe_failure(name: str, exc: Any, output: Path) -> str:
    first_line = (exc.source or "").strip().splitlines()[:1]
    where = f" ({first_line[0]!r})" if first_line else ""
    return (
        f"Chapter {name} failed in cell {exc.exec_count}{where}: "
        f"{exc.ename}: {exc.evalue}\n"
        f"The partly executed notebook is kept for inspection: {output}"
    )


def _secret_values(engagement: Engagement) -> dict[str, str]:
    values = {}
    for secret in engagement.secrets.values():
        value = os.environ.get(secret.env)
        # A value under 8 characters cannot be told apart from ordinary text, so it
        # is not scrubbed; no provider issues secrets that short.
        if value and len(value) >= 8:
            values[secret.env] = value
    return values


def scrub_secrets(folder: Path, values: Mapping[str, str]) -> list[Path]:
    """Replace any secret value found in ``folder``'s files; return the files changed.

    Chapters are written never to print a secret; this is the net under that rule,
    and it logs a warning naming the file and variable (never the value).
    """
    changed = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        cleaned = text
        for env, value in values.items():
            cleaned = cleaned.replace(value, f"[secret ${env}]")
        if cleaned != text:
            logger.warning("report.secret_scrubbed %s", path)
            path.write_text(cleaned, encoding="utf-8", errors="surrogateescape")
            changed.append(path)
    return changed
