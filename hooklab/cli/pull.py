"""``hooklab backfill`` and ``hooklab lab hybrid``: the pull side's commands."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from hooklab.cli._app import http_url, main, non_empty, run_or_exit
from hooklab.errors import ConfigError

if TYPE_CHECKING:
    from hooklab.api import Auth, Cursor
    from hooklab.ledger import Ledger

# Imported lazily inside the commands: the API client, the ledger and pandas
# would slow down every other `hooklab` command for nothing.


@main.command()
@click.option(
    "--ledger",
    "ledger_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The ledger file the receiver writes to; created if missing.",
)
@click.option(
    "--api",
    "base_url",
    required=True,
    metavar="URL",
    callback=http_url,
    help="API base URL.",
)
@click.option(
    "--source",
    required=True,
    callback=non_empty,
    help="The receiver's name for this provider (NAME in POST /hooks/NAME).",
)
@click.option(
    "--since",
    required=True,
    metavar="TIME",
    help="List events created since TIME: ISO-8601 (UTC unless it says) or unix s.",
)
@click.option("--route", default="/v1/events", show_default=True, help="Events list.")
@click.option(
    "--since-param",
    default="created_since",
    show_default=True,
    help="Query parameter the API filters creation time with.",
)
@click.option(
    "--cursor-param",
    default="starting_after",
    show_default=True,
    help="Query parameter that carries the last id seen.",
)
@click.option(
    "--page-size", default=100, show_default=True, type=click.IntRange(1, 1000)
)
@click.option("--bearer-env", metavar="VAR", help="Variable holding a bearer token.")
@click.option("--api-key-env", metavar="VAR", help="Variable holding an API key.")
@click.option(
    "--api-key-header",
    default="X-Api-Key",
    show_default=True,
    help="Header that carries the API key.",
)
@click.option("--oauth-token-url", metavar="URL", help="OAuth 2.0 token endpoint.")
@click.option("--client-id", help="OAuth 2.0 client id (not a secret).")
@click.option(
    "--client-secret-env", metavar="VAR", help="Variable holding the client secret."
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True),
    help="Requests a second to stay under, on top of honouring 429s.",
)
@click.option(
    "--action",
    help="Process the source's pending events now with this action (record, "
    "'forward URL' or module:function) instead of leaving them to hooklab serve.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def backfill(
    ledger_path: str,
    base_url: str,
    source: str,
    since: str,
    route: str,
    since_param: str,
    cursor_param: str,
    page_size: int,
    bearer_env: str | None,
    api_key_env: str | None,
    api_key_header: str,
    oauth_token_url: str | None,
    client_id: str | None,
    client_secret_env: str | None,
    rate_limit: float | None,
    action: str | None,
    as_json: bool,
) -> None:
    """Record the events the webhooks missed, listed through the provider's API.

    Walks the API's events list (cursor pagination) from TIME, and records each
    event the ledger lacks exactly as the receiver would: same source, same event
    id. A running `hooklab serve` on the same ledger then processes them once; a
    webhook copy arriving later is a duplicate. Credentials are read from the
    environment variables you name, never from the command line.

    \b
    Examples:
      export SHOP_API_TOKEN=...
      hooklab backfill --ledger hooklab-ledger.db --api https://api.example.com \\
          --source shop --since 2026-05-01T00:00 --bearer-env SHOP_API_TOKEN
      hooklab backfill --ledger bakery.db --api http://127.0.0.1:8100 \\
          --source shop --since 1767225600 --oauth-token-url \\
          http://127.0.0.1:8100/oauth/token --client-id lab \\
          --client-secret-env LAB_SECRET --action record --json
    """
    from hooklab.api import Cursor

    _quiet()
    style = Cursor(param=cursor_param, limit=page_size)
    credentials = (
        bearer_env,
        api_key_env,
        api_key_header,
        oauth_token_url,
        client_id,
        client_secret_env,
    )

    def work() -> dict[str, object]:
        auth = _auth(*credentials)
        return _backfill(
            ledger_path,
            base_url,
            source,
            since,
            (route, since_param, style),
            auth,
            rate_limit,
            action,
        )

    outcome = run_or_exit(work)
    _print_backfill(outcome, as_json)


@main.group()
def lab() -> None:
    """Live experiments on loopback: real servers, real HTTP, compressed time.

    \b
    Examples:
      hooklab lab hybrid
      hooklab lab hybrid --events 500 --drop 0.2 --rate-limit 5 --json
    """


@lab.command("hybrid")
@click.option(
    "--events",
    default=2000,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Events the mock provider emits.",
)
@click.option(
    "--drop",
    default=0.10,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of webhooks lost on the way (never retried).",
)
@click.option(
    "--duplicate",
    default=0.05,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of delivered webhooks sent a second time.",
)
@click.option(
    "--rate-limit",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="API requests a second the provider allows (429 and Retry-After beyond).",
)
@click.option(
    "--page-size",
    default=100,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Events per API page.",
)
@click.option("--seed", default=7, show_default=True, help="Seed for the faults.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def hybrid(
    events: int,
    drop: float,
    duplicate: float,
    rate_limit: float,
    page_size: int,
    seed: int,
    as_json: bool,
) -> None:
    """Webhooks plus a backfill, live: does every event run exactly once?

    A mock provider on loopback emits EVENTS order events as signed webhooks to
    the real receiver, losing a --drop share and sending a --duplicate share
    twice; its API allows --rate-limit requests a second. Then the backfill lists
    the events through the API and records what the webhooks missed. Prints
    events emitted, delivered by webhook, recovered by backfill, missing,
    processed more than once, API calls made and calls refused with 429. Exit 1
    if any event is missing or ran twice.

    \b
    Examples:
      hooklab lab hybrid
      hooklab lab hybrid --events 500 --drop 0.3 --duplicate 0.1 --json
    """
    from hooklab.studies.hybrid import run_hybrid

    _quiet()
    result = run_or_exit(
        lambda: run_hybrid(
            events=events,
            drop=drop,
            duplicate=duplicate,
            rate_limit=rate_limit,
            page_size=page_size,
            seed=seed,
        )
    )
    summary = result.summary
    click.echo(json.dumps(summary.as_dict()) if as_json else "\n".join(summary.lines()))
    if summary.missing or summary.processed_more_than_once:
        raise SystemExit(1)


def _backfill(
    ledger_path: str,
    base_url: str,
    source: str,
    since: str,
    listing: tuple[str, str, Cursor],
    auth: Auth | None,
    rate_limit: float | None,
    action: str | None,
) -> dict[str, object]:
    """Reconcile (and maybe process); return the report with the call counts."""
    from hooklab.api import Client
    from hooklab.backfill import reconcile
    from hooklab.cli.runtime import _parse_time
    from hooklab.ledger import SqliteLedger, check_ledger_file

    route, since_param, style = listing
    since_s = _parse_time(since)
    check_ledger_file(ledger_path, empty_ok=True)
    with (
        SqliteLedger(ledger_path) as ledger,
        Client(base_url, auth=auth, rate_limit=rate_limit) as client,
    ):
        report = reconcile(
            client,
            ledger,
            since_s,
            source=source,
            route=route,
            style=style,
            since_param=since_param,
        )
        processed = _process(ledger, source, action) if action else None

    outcome: dict[str, object] = asdict(report)
    outcome["calls"] = len(client.calls)
    outcome["refused_429"] = sum(call.status == 429 for call in client.calls)
    outcome["processed"] = processed
    return outcome


def _process(ledger: Ledger, source: str, action: str) -> int:
    from hooklab.actions import load_action
    from hooklab.processing import Pipeline, Processor

    pipeline = Pipeline(source, source, (load_action(action),))
    return Processor(ledger, [pipeline]).run_until_idle()


def _auth(
    bearer_env: str | None,
    api_key_env: str | None,
    api_key_header: str,
    oauth_token_url: str | None,
    client_id: str | None,
    client_secret_env: str | None,
) -> Auth | None:
    """The credentials the options name, read from their variables; or None."""
    from hooklab.api import ApiKey, BearerToken, OAuth2

    oauth = oauth_token_url or client_id or client_secret_env
    chosen = sum(bool(x) for x in (bearer_env, api_key_env, oauth))
    if chosen > 1:
        raise ConfigError(
            "Choose one kind of credentials: --bearer-env, --api-key-env, or "
            "--oauth-token-url with --client-id and --client-secret-env."
        )

    if bearer_env:
        return BearerToken(_env(bearer_env, "--bearer-env"))
    if api_key_env:
        return ApiKey(_env(api_key_env, "--api-key-env"), header=api_key_header)
    if not oauth:
        return None
    if not (oauth_token_url and client_id and client_secret_env):
        raise ConfigError(
            "OAuth needs all three of --oauth-token-url, --client-id and "
            "--client-secret-env."
        )
    secret = _env(client_secret_env, "--client-secret-env")
    return OAuth2(oauth_token_url, client_id, secret)


def _env(name: str, option: str) -> str:
    """The value of the variable ``name``; ConfigError naming it (never a value)."""
    value = os.environ.get(name, "")
    if not value:
        raise ConfigError(
            f"{option} names the environment variable {name}, which is unset or "
            "empty; export it first."
        )
    return value


def _print_backfill(outcome: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(outcome))
        return

    click.echo(
        f"Listed {outcome['listed']} events of {outcome['source']} in "
        f"{outcome['pages']} pages: {outcome['already_known']} already in the "
        f"ledger, {outcome['recovered']} recovered (recorded as pending)."
    )
    click.echo(
        f"API calls: {outcome['calls']}, of which {outcome['refused_429']} refused "
        "with 429 and retried as told."
    )
    if outcome["processed"] is not None:
        click.echo(f"Processed {outcome['processed']} pending event(s) now.")


def _quiet() -> None:
    """Keep hooklab's per-event warnings off the terminal unless -v asked for them.

    A lab run logs thousands of expected duplicates and recoveries; Python's
    last-resort handler would print each as a bare line.
    """
    if not logging.getLogger().handlers:
        logging.getLogger("hooklab").setLevel(logging.ERROR)
