"""The ``hooklab`` command group, and how commands turn errors into exit codes.

Exit codes: 0 success, 1 the work failed (a chapter, a refused delivery), 2 a usage
or input mistake (a bad option, an invalid engagement file).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from hooklab import __version__
from hooklab.errors import ConfigError, HooklabError
from hooklab.logfields import FieldsFormatter, configure_logging

__all__ = ["FieldsFormatter", "configure_logging", "main", "run_or_exit"]

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
    # Warnings (a retry, a refused delivery) always reach stderr with their fields;
    # -v adds what hooklab does.
    configure_logging(
        logging.INFO if verbose else logging.WARNING,
        "%(levelname)s %(name)s %(message)s",
        exactly=True,
    )
    if not verbose:
        # papermill warns about every parameter a chapter does not declare; a chapter
        # may ignore some of the audit's parameters, so keep the progress lines clean.
        logging.getLogger("papermill").setLevel(logging.ERROR)
        # nbconvert warns of missing alt text before hooklab.report adds it.
        logging.getLogger("traitlets").setLevel(logging.ERROR)


def run_or_exit(work: Callable[[], T]) -> T:
    """Run ``work``, turning hooklab's own errors into a message and an exit code."""
    try:
        return work()
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except HooklabError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def finite(
    ctx: click.Context, param: click.Parameter, value: float | None
) -> float | None:
    """Click callback: refuse nan and inf, which a FloatRange lets through."""
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value!r} is not a number this option can use.")
    return value


def http_url(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Click callback: an http(s) URL with a host and a usable port."""
    if value is None:
        return None
    import httpx

    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise click.BadParameter(f"{value!r} is not a URL ({exc}).") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise click.BadParameter(
            f"{value!r} is not an http:// or https:// URL with a host."
        )
    if url.port is not None and not 0 < url.port < 65536:
        raise click.BadParameter(f"{value!r} names port {url.port}; ports are 1-65535.")
    return value


def non_empty(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Click callback: refuse an empty or blank value."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty.")
    return value


def header_value(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Click callback: text that fits in one HTTP header line (printable ASCII)."""
    if value is not None and not (value.isascii() and value.isprintable()):
        raise click.BadParameter(
            "must be printable ASCII, as an HTTP header value is (no line breaks)."
        )
    return value
