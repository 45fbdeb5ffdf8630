"""The ``hooklab`` command: argument parsing and exit codes only.

Exit codes: 0 success, 1 the work failed (a chapter, a refused delivery), 2 a usage
or input mistake (a bad option, an invalid engagement file).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from hooklab import __version__
from hooklab.errors import ConfigError, HooklabError

__all__ = ["main"]

T = TypeVar("T")


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 88}
)
@click.version_option(__version__, prog_name="hooklab")
@click.option("-v", "--verbose", is_flag=True, help="Log what hooklab does to stderr.")
def main(verbose: bool) -> None:
    """hooklab: design and audit webhook and API integrations.

    Start with `hooklab audit`, which runs the whole workbook on the embedded example
    (Acme Shop) and prints where the report is. Copy templates/engagement.yaml to
    describe your own client, check it with `hooklab check FILE`, then audit it.
    """
    if verbose:
        logging.basicConfig(
            level=logging.INFO, format="%(levelname)s %(name)s %(message)s"
        )
    else:
        # papermill warns about every parameter a chapter does not declare; a chapter
        # may ignore some of the audit's parameters, so keep the progress lines clean.
        logging.getLogger("papermill").setLevel(logging.ERROR)


@main.command()
@click.argument("engagement", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--reports",
    "reports_dir",
    default="reports",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder under which reports/<client>/<UTC stamp>/ is made.",
)
@click.option(
    "--seed", default=7, show_default=True, help="Seed for every random draw."
)
@click.option(
    "--lab-size",
    default=300,
    show_default=True,
    type=click.IntRange(10, 100_000),
    help="Webhooks the lab chapter delivers on loopback.",
)
@click.option(
    "--chapters",
    "chapters_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Run the NN_*.ipynb chapters of another folder instead of notebooks/.",
)
def audit(
    engagement: str | None,
    reports_dir: str,
    seed: int,
    lab_size: int,
    chapters_dir: str | None,
) -> None:
    """Run every chapter on ENGAGEMENT and write one client-ready report.

    ENGAGEMENT is a YAML file (see templates/engagement.yaml); without it the embedded
    example, templates/examples/acme-shop.yaml, is audited. The executed notebooks,
    each chapter's results as JSON, the integration document and report.html land in
    reports/<client>/<UTC stamp>/, whose path is printed last.

    \b
    Examples:
      hooklab audit
      hooklab audit clients/bakery.yaml --lab-size 500 --seed 1
    """
    from hooklab.report import run_audit

    def progress(index: int, total: int, name: str, state: str, seconds: float) -> None:
        if state == "start":
            click.echo(f"[{index}/{total}] {name} ...", err=True, nl=False)
        else:
            click.echo(f" {state} ({seconds:.1f} s)", err=True)

    result = _run(
        lambda: run_audit(
            engagement,
            reports_dir=reports_dir,
            chapters_dir=chapters_dir,
            seed=seed,
            lab_size=lab_size,
            progress=progress,
        )
    )
    click.echo(f"Report written: {result.report}", err=True)
    click.echo(str(result.folder))


@main.command()
@click.argument("engagement", type=click.Path(dir_okay=False))
def check(engagement: str) -> None:
    """Validate an ENGAGEMENT file and summarise it, without running anything.

    Every problem is listed with its line and field, for example
    `line 12: workflows[0].events_per_day: Input should be a valid number`.
    """
    from hooklab.spec import load_engagement

    loaded = _run(lambda: load_engagement(Path(engagement)))
    click.echo(
        f"{engagement}: valid. {loaded.client.name}: {len(loaded.apps)} apps, "
        f"{len(loaded.workflows)} workflows, {len(loaded.secrets)} secrets named."
    )


def _run(work: Callable[[], T]) -> T:
    """Run ``work``, turning hooklab's own errors into a message and an exit code."""
    try:
        return work()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except HooklabError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
