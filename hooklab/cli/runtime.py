"""``hooklab serve``, ``replay`` and ``ledger``: the receiver's commands."""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hooklab.cli._app import (
    configure_logging,
    http_url,
    main,
    non_empty,
    run_or_exit,
)
from hooklab.errors import ConfigError
from hooklab.ledger import STATUSES, EventState, SqliteLedger, check_ledger_file

if TYPE_CHECKING:
    from hooklab.actions import Action
    from hooklab.service import ServicePlan

LEDGER_HELP = "The ledger file (SQLite)."


@main.command()
@click.argument("engagement", required=False, type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--ledger",
    "ledger_path",
    default="hooklab-ledger.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The ledger file; created if missing.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    metavar="NAME:SCHEME:SECRET_ENV",
    help="Serve POST /hooks/NAME, verified with SCHEME and the secret held by the "
    "environment variable SECRET_ENV (repeatable).",
)
@click.option(
    "--action",
    default="record",
    show_default=True,
    help="What each --source event runs: record, 'forward URL' or module:function.",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(0, 64),
    help="Worker threads that process events (0: only receive).",
)
@click.option("--allow", multiple=True, metavar="CIDR", help="Allowed senders.")
@click.option(
    "--trusted-proxies",
    type=click.IntRange(0),
    help="Proxies in front, whose X-Forwarded-For and X-Forwarded-Proto are "
    "believed (the address for --allow, https for URL-signing schemes).",
)
@click.option("--max-body", type=click.IntRange(1), help="Body limit in bytes.")
@click.option("--max-attempts", type=click.IntRange(1), help="Tries per event.")
@click.option("--lease", type=click.FloatRange(0.1), help="Worker lease in seconds.")
def serve(
    engagement: str | None,
    host: str,
    port: int,
    ledger_path: str,
    sources: tuple[str, ...],
    action: str,
    workers: int,
    allow: tuple[str, ...],
    trusted_proxies: int | None,
    max_body: int | None,
    max_attempts: int | None,
    lease: float | None,
) -> None:
    """Receive webhooks durably and process them, until Ctrl-C.

    Sources come from ENGAGEMENT (every app with webhooks, a signature_scheme and a
    secret; its workflows' actions run on their events) or from --source. A
    delivery is answered 2xx only once it is on disk in the ledger; workers run
    the actions apart, with retries, and dead letters wait for `hooklab replay`.
    Routes: POST /hooks/NAME, GET /healthz, GET /metrics (Prometheus).

    Every refusal is JSON with a reason. Headers must arrive within 10 s and
    stay under 64 KiB, a body within 10 s and under --max-body (1 MiB); past
    1,024 open connections new ones are closed unread.

    Options given here override the engagement's receiver section.

    \b
    Examples:
      export SHOP_SECRET=whsec_...
      hooklab serve --source shop:standard-webhooks:SHOP_SECRET
      hooklab serve clients/bakery.yaml --port 9000 --ledger bakery.db
    """
    overrides: dict[str, object] = {
        "allow": allow,
        "trusted_proxies": trusted_proxies,
        "max_body_bytes": max_body,
        "max_attempts": max_attempts,
        "lease_s": lease,
    }

    def start() -> None:
        from hooklab.service import run_service

        # A server's warnings (refusals, retries, dead letters) belong on stderr
        # with a time; -v has already configured INFO if asked for.
        configure_logging(
            logging.WARNING, "%(asctime)s %(levelname)s %(name)s %(message)s"
        )

        check_ledger_file(ledger_path, empty_ok=True)
        plan = _plan(engagement, sources, action, overrides)
        for note in plan.notes:
            click.echo(f"note: {note}", err=True)
        run_service(
            plan,
            ledger_path,
            host=host,
            port=port,
            workers=workers,
            announce=lambda line: click.echo(f"hooklab serve: {line}", err=True),
        )

    run_or_exit(start)


def _plan(
    engagement: str | None,
    sources: tuple[str, ...],
    action: str,
    overrides: Mapping[str, object],
) -> ServicePlan:
    """Build the service plan from the engagement and/or the --source options."""
    from hooklab.service import plan_from_engagement, plan_from_sources
    from hooklab.service import runtime_settings as settings_of
    from hooklab.spec import Receiver, load_engagement

    if engagement is None and not sources:
        raise ConfigError(
            "Tell hooklab serve what to receive: an engagement file (hooklab serve "
            "clients/bakery.yaml) or one --source NAME:SCHEME:SECRET_ENV per sender "
            "(hooklab serve --source shop:standard-webhooks:SHOP_SECRET)."
        )
    given = {k: v for k, v in overrides.items() if v not in (None, ())}

    if engagement is None:
        guard, policy, lease_s = settings_of(Receiver().model_copy(update=given))
        return plan_from_sources(
            sources, action=action, guard=guard, policy=policy, lease_s=lease_s
        )

    loaded = load_engagement(Path(engagement))
    settings = loaded.receiver.model_copy(update=given)
    plan = plan_from_engagement(loaded.model_copy(update={"receiver": settings}))
    if not sources:
        return plan

    extra = plan_from_sources(sources, action=action)
    return replace(
        plan,
        sources={**plan.sources, **extra.sources},
        pipelines=[*plan.pipelines, *extra.pipelines],
    )


@main.command()
@click.option(
    "--ledger",
    "ledger_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help=LEDGER_HELP,
)
@click.option("--dead", is_flag=True, help="Replay every dead letter.")
@click.option("--since", metavar="TIME", help="Replay events received since TIME.")
@click.option(
    "--id",
    "event_id",
    metavar="ID",
    callback=non_empty,
    help="Replay the event with this id.",
)
@click.option(
    "--source",
    metavar="NAME",
    callback=non_empty,
    help="Only events of this source (needed when two sources share an --id).",
)
@click.option(
    "--to",
    "url",
    metavar="URL",
    callback=http_url,
    help="Re-deliver the stored bodies to URL, signed afresh, instead of requeueing.",
)
@click.option(
    "--scheme",
    default="standard-webhooks",
    show_default=True,
    help="Signature scheme for --to.",
)
@click.option(
    "--secret-env", metavar="VAR", help="Environment variable with the --to secret."
)
@click.option(
    "--action",
    help="Run this action on the requeued events now (record, 'forward URL' or "
    "module:function), instead of leaving them to a running hooklab serve.",
)
def replay(
    ledger_path: str,
    dead: bool,
    since: str | None,
    event_id: str | None,
    source: str | None,
    url: str | None,
    scheme: str,
    secret_env: str | None,
    action: str | None,
) -> None:
    """Run stored events again: dead letters after a fix, or into another receiver.

    Without --to the chosen events go back to pending with fresh attempts; their
    actions see the same idempotency key as the first time, so a target that
    honours it applies each effect once. A running `hooklab serve` on the same
    ledger picks them up, or --action runs them here and now. With --to the stored
    raw deliveries are posted to URL (a staging receiver) with a fresh signature.
    TIME is ISO-8601 (UTC unless it says otherwise) or unix seconds.

    \b
    Examples:
      hooklab replay --ledger hooklab-ledger.db --dead
      hooklab replay --ledger hooklab-ledger.db --id evt_123 --action app.hooks:handle
      hooklab replay --ledger hooklab-ledger.db --since 2026-05-01T00:00 \\
          --to http://127.0.0.1:9000/hooks/shop --secret-env STAGING_SECRET
    """
    if url is not None and action is not None:
        raise click.UsageError(
            "--to re-delivers to another receiver, which runs its own actions; "
            "--action runs them here. Choose one."
        )
    run_or_exit(
        lambda: _replay(
            ledger_path,
            dead,
            since,
            (event_id, source),
            url,
            scheme,
            secret_env,
            action,
        )
    )


def _replay(
    ledger_path: str,
    dead: bool,
    since: str | None,
    identity: tuple[str | None, str | None],
    url: str | None,
    scheme: str,
    secret_env: str | None,
    action: str | None,
) -> None:
    from hooklab import replay as replaying
    from hooklab.actions import load_action

    check_ledger_file(ledger_path)
    with SqliteLedger(ledger_path) as ledger:
        event_id, source = identity
        since_s = None if since is None else _parse_time(since)
        chosen = replaying.choose(ledger, dead=dead, since=since_s, event_id=event_id)
        if source is not None:
            chosen = [event for event in chosen if event.source == source]
        if event_id is not None and not chosen:  # a typo, most likely
            of_source = "" if source is None else f" of source {source!r}"
            raise ConfigError(
                f"No event{of_source} in {ledger_path} has the id {event_id!r}; "
                f"`hooklab ledger list --ledger {ledger_path}` shows the ids."
            )
        if event_id is not None and len({e.source for e in chosen}) > 1:
            names = ", ".join(sorted({e.source for e in chosen}))
            raise ConfigError(
                f"--id {event_id!r} is an event of several sources ({names}); "
                "name the one to replay with --source."
            )
        if url is not None:
            _redeliver(ledger, chosen, url, scheme, secret_env)
            return

        run = None if action is None else load_action(action)  # before any change
        if action is not None:
            what = (
                " (record only logs each event)" if action.strip() == "record" else ""
            )
            click.echo(
                f"note: --action runs {action!r}{what} in place of the events' own "
                "workflow actions; leave them to `hooklab serve ENGAGEMENT` to run "
                "those.",
                err=True,
            )
        count = replaying.requeue(ledger, chosen, now=time.time())
        click.echo(f"Requeued {count} event(s) in {ledger_path}.")
        quarantined = sum(event.status == "quarantined" for event in chosen)
        if quarantined:
            click.echo(
                f"Left {quarantined} quarantined event(s) as they are: their bodies "
                "could not be decoded, so no action can run on them (`hooklab ledger "
                "list --status quarantined` shows why; --to still re-delivers them)."
            )
        if run is not None:
            _process_now(ledger, chosen, run)
        elif count:
            click.echo(
                f"A running `hooklab serve --ledger {ledger_path}` processes them; "
                "or pass --action to run them here."
            )


def _redeliver(
    ledger: SqliteLedger,
    chosen: list[EventState],
    url: str,
    scheme: str,
    secret_env: str | None,
) -> None:
    import os

    from hooklab.replay import redeliver

    secret = os.environ.get(secret_env or "", "")
    if not secret:
        raise ConfigError(
            "--to signs each delivery afresh: name the environment variable that "
            "holds the secret with --secret-env VAR, and export it."
        )

    attempts = redeliver(ledger, chosen, url, scheme=scheme, secret=secret)
    for attempt in attempts:
        outcome = attempt.status_code or attempt.error
        click.echo(f"{attempt.msg_id}\t{outcome}")
    failed = sum(not attempt.ok for attempt in attempts)
    click.echo(f"Re-delivered {len(attempts) - failed} of {len(attempts)} to {url}.")
    if failed:
        raise SystemExit(1)


def _process_now(ledger: SqliteLedger, chosen: list[EventState], run: Action) -> None:
    """Run ``run`` on the chosen events, and only on them, then say how they ended."""
    from hooklab.ledger import MAX_AMONG
    from hooklab.processing import Pipeline, Processor

    keys = [(e.source, e.event_id) for e in chosen if e.status != "quarantined"]
    pipelines = [Pipeline(s, s, (run,)) for s in sorted({s for s, _ in keys})]
    processed = 0
    for start in range(0, len(keys), MAX_AMONG):
        among = keys[start : start + MAX_AMONG]
        processor = Processor(ledger, pipelines, among=among)
        try:
            processed += processor.run_until_idle()
        except KeyboardInterrupt:
            # Every claim not settled goes back to pending: those not started, and
            # the one that was running (it runs again with the same idempotency
            # key, as after a crash).
            released = ledger.release(processor.worker_id, now=time.time())
            click.echo(
                f"Interrupted: {released} claimed event(s) not finished are pending "
                "again; replay them the same way to go on.",
                err=True,
            )
            raise SystemExit(130) from None
        if len(keys) > MAX_AMONG:  # long work says how far it has got
            done = min(start + MAX_AMONG, len(keys))
            click.echo(f"  ... {done:,} of {len(keys):,} chosen events run", err=True)

    ended = Counter(
        state.status
        for source, event_id in keys
        for state in ledger.events(event_id=event_id)
        if state.source == source
    )
    click.echo(
        f"Processed {processed} attempt(s) of the {len(keys)} chosen event(s): "
        f"{ended['done']} done, {ended['failed']} waiting to retry, "
        f"{ended['dead']} dead."
    )


def _parse_time(text: str) -> float:
    """Unix seconds, or an ISO-8601 time (UTC when it names no offset)."""
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds):  # nan would switch the filter off
            raise ConfigError(f"--since {text!r} is not a time; give unix seconds.")
        return seconds
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"--since {text!r} is neither ISO-8601 (2026-05-01T09:30) nor unix seconds."
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


@main.group()
def ledger() -> None:
    """Look inside a ledger: counts by status, or the events themselves.

    \b
    Examples:
      hooklab ledger stats --ledger hooklab-ledger.db
      hooklab ledger list --ledger hooklab-ledger.db --status dead --json
    """


@ledger.command()
@click.option(
    "--ledger",
    "ledger_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help=LEDGER_HELP,
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def stats(ledger_path: str, as_json: bool) -> None:
    """Count the ledger's events by processing status."""

    def read() -> dict[str, int]:
        check_ledger_file(ledger_path)
        with SqliteLedger(ledger_path, read_only=True) as opened:
            return opened.stats()

    counts = run_or_exit(read)
    if as_json:
        click.echo(json.dumps(counts))
        return
    for status, count in counts.items():
        click.echo(f"{status:<12}{count:>8}")
    click.echo(f"{'total':<12}{sum(counts.values()):>8}")


@ledger.command(name="list")
@click.option(
    "--ledger",
    "ledger_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help=LEDGER_HELP,
)
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines.")
def list_events(ledger_path: str, status: str | None, as_json: bool) -> None:
    """List events: source, event id, type, status, attempts and times (UTC)."""

    def stream() -> None:
        check_ledger_file(ledger_path)
        with SqliteLedger(ledger_path, read_only=True) as opened:
            for event in opened.iter_events(status=status):  # type: ignore[arg-type]
                click.echo(json.dumps(asdict(event)) if as_json else _row(event))

    try:
        run_or_exit(stream)
    except BrokenPipeError:  # `| head` has read enough: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _row(event: EventState) -> str:
    fields = [
        event.source,
        event.event_id,
        event.event_type or "-",
        event.status,
        str(event.attempts),
        _utc(event.received_at),
        _utc(event.updated_at),
        event.last_error or event.note or "",
    ]
    return "\t".join(_printable(field) for field in fields)


def _printable(text: str) -> str:
    """``text`` with control and format characters escaped (\\x1b, \\n, \\u202e).

    Ids and types come from senders: an escape sequence must not reach the
    terminal, and a tab or newline must not split a row.
    """
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def _utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
