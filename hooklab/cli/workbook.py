"""``hooklab audit`` and ``hooklab check``: the workbook's commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hooklab.cli._app import main, run_or_exit

if TYPE_CHECKING:
    from hooklab.spec import Engagement


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
    type=click.IntRange(10, 100_000),  # hooklab.report.LAB_SIZES, without importing it
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

    run_or_exit(lambda: _ready_for_audit(engagement))

    def progress(index: int, total: int, name: str, state: str, seconds: float) -> None:
        # Whole lines only: a kernel may write to stderr while a chapter runs.
        if state == "start":
            click.echo(f"[{index}/{total}] {name} running", err=True)
        else:
            click.echo(f"[{index}/{total}] {name} {state} in {seconds:.1f} s", err=True)

    result = run_or_exit(
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
    from hooklab.studies._words import counted

    loaded = run_or_exit(lambda: load_engagement(Path(engagement)))
    run_or_exit(lambda: _ready_for_audit(engagement))
    click.echo(
        f"{engagement}: valid. {loaded.client.name}: {counted(len(loaded.apps), 'app')}"
        f", {counted(len(loaded.workflows), 'workflow')}, "
        f"{counted(len(loaded.secrets), 'secret')} named."
    )
    for note in _placeholders(loaded):
        click.echo(f"note: {note}")


#: Values templates/engagement.yaml ships with, which a filled-in file has replaced.
_TEMPLATE_TEXT = ("Client name", "what happens in the target app")


def _placeholders(engagement: Engagement) -> list[str]:
    """Fields that still hold the blank template's text: valid, but not the client's."""
    found = []
    if engagement.client.name in _TEMPLATE_TEXT:
        found.append(f"client.name is still the template's {engagement.client.name!r}")
    if engagement.client.slug == "client-name":
        found.append("client.slug is still the template's 'client-name'")
    for i, app in enumerate(engagement.apps):
        if app.api_base_url == "https://api.example.com":
            found.append(
                f"apps[{i}].api_base_url is still the template's "
                "'https://api.example.com'"
            )
    for i, wf in enumerate(engagement.workflows):
        for j, action in enumerate(wf.actions):
            if action.does in _TEMPLATE_TEXT:
                found.append(
                    f"workflows[{i}].actions[{j}].does is still the template's "
                    f"{action.does!r}"
                )
    return found


def _unknown_schemes(engagement: Engagement) -> list[str]:
    """Signature schemes the engagement names that hooklab has not got (a typo
    here would otherwise surface only when ``hooklab serve`` refuses the file)."""
    from hooklab.signing import schemes

    known = schemes()
    return [
        f"apps[{i}].signature_scheme {app.signature_scheme!r} is not a scheme "
        f"hooklab knows; the schemes are {', '.join(known)}"
        for i, app in enumerate(engagement.apps)
        if app.signature_scheme and app.signature_scheme not in known
    ]


def _ready_for_audit(path: str | None) -> None:
    """Refuse, as a user mistake, an engagement the chapters cannot audit."""
    from hooklab.errors import ConfigError
    from hooklab.spec import audit_problems, example_path, load_engagement

    engagement = load_engagement(path or None)
    problems = audit_problems(engagement) + _unknown_schemes(engagement)
    if problems:
        where = path or example_path()
        raise ConfigError(f"{where} is valid but cannot be audited: {problems[0]}")
