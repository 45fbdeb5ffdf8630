"""The ``hooklab serve`` process: the receiver and its workers on one ledger.

A ``ServicePlan`` says what to serve: the webhook sources (from an engagement's
apps, or from ``NAME:SCHEME:SECRET_ENV`` options), the pipelines their events run
through, the receiver's limits and the retry policy. ``run_service`` opens the
ledger, starts the workers, and serves the receiver with uvicorn until it is
stopped (Ctrl-C or SIGTERM); the workers then finish their current event.

Secrets are read from the named environment variables when the plan is built; a
variable may hold several secrets separated by spaces, which is how a rotation
accepts the old and the new secret at once.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from hooklab.actions import load_action
from hooklab.errors import ConfigError
from hooklab.events import known_providers
from hooklab.httpguard import GuardedHttpTools
from hooklab.ledger import SqliteLedger
from hooklab.metrics import Metrics
from hooklab.processing import Ordering, Pipeline, Processor, RetryPolicy
from hooklab.receiver import Guard, Source, create_app
from hooklab.signing import Verifier
from hooklab.spec import Engagement, Receiver

__all__ = [
    "ServicePlan",
    "parse_source",
    "plan_from_engagement",
    "plan_from_sources",
    "run_service",
    "runtime_settings",
    "server_config",
]

logger = logging.getLogger(__name__)

_SOURCE = re.compile(r"^([a-z0-9][a-z0-9_-]*):([a-z0-9-]+):([A-Z][A-Z0-9_]*)$")


@dataclass(frozen=True)
class ServicePlan:
    """What one ``hooklab serve`` process receives and how it processes it.

    ``notes`` lists apps that were left out, and why, for the operator to read.
    """

    sources: dict[str, Source]
    pipelines: list[Pipeline]
    guard: Guard = field(default_factory=Guard)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    lease_s: float = 30.0
    notes: list[str] = field(default_factory=list)


def parse_source(text: str, environ: Mapping[str, str] | None = None) -> Source:
    """Build a source from ``NAME:SCHEME:SECRET_ENV``, reading the secret's variable."""
    match = _SOURCE.match(text)
    if match is None:
        # The text is not echoed: a user may have pasted the secret itself.
        raise ConfigError(
            "A --source value is not NAME:SCHEME:SECRET_ENV, for example "
            "shop:standard-webhooks:SHOP_WEBHOOK_SECRET (the variable's NAME, never "
            "the secret itself)."
        )

    name, scheme, env = match.groups()
    secrets = _secrets_from(env, environ, f"--source {name}")
    return Source(name, Verifier(scheme, secrets))


def plan_from_sources(
    sources: Sequence[str],
    *,
    action: str = "record",
    environ: Mapping[str, str] | None = None,
    guard: Guard | None = None,
    policy: RetryPolicy | None = None,
    lease_s: float = 30.0,
) -> ServicePlan:
    """A quick-start plan: these sources, every event of each running ``action``."""
    built = [parse_source(text, environ) for text in sources]
    run = load_action(action)

    return ServicePlan(
        sources={source.name: source for source in built},
        pipelines=[Pipeline(s.name, s.name, (run,)) for s in built],
        guard=guard or Guard(),
        policy=policy or RetryPolicy(),
        lease_s=lease_s,
    )


def plan_from_engagement(
    engagement: Engagement, environ: Mapping[str, str] | None = None
) -> ServicePlan:
    """Serve every app that sends signed webhooks; run every workflow's actions."""
    sources: dict[str, Source] = {}
    notes: list[str] = []
    unset: list[str] = []

    for app in engagement.apps:
        if not app.webhooks:
            continue
        if not (app.signature_scheme and app.secret):
            notes.append(
                f"App {app.id!r} is not served: it names no signature_scheme and "
                "secret, and unsigned webhooks are never accepted."
            )
            continue
        env = engagement.secrets[app.secret].env
        try:
            secrets = _secrets_from(env, environ, f"App {app.id!r}")
        except ConfigError as exc:
            unset.append(str(exc))  # every unset variable is named at once
            continue
        provider = app.provider if app.provider in known_providers() else None
        verifier = Verifier(app.signature_scheme, secrets)
        sources[app.id] = Source(app.id, verifier, provider=provider)

    if unset:
        raise ConfigError("\n".join(unset))
    if not sources:
        raise ConfigError(
            "The engagement has no app that sends signed webhooks (webhooks: true, "
            "with signature_scheme and secret); nothing to serve."
        )
    return _with_settings(engagement, sources, notes)


def runtime_settings(settings: Receiver) -> tuple[Guard, RetryPolicy, float]:
    """The receiver limits, retry policy and lease an engagement's section asks for."""
    guard = Guard.build(
        max_body_bytes=settings.max_body_bytes,
        body_timeout_s=settings.body_timeout_s,
        allow=settings.allow,
        trusted_proxies=settings.trusted_proxies,
    )
    policy = RetryPolicy(
        settings.max_attempts, settings.retry_base_s, settings.retry_cap_s
    )
    return guard, policy, settings.lease_s


def _with_settings(
    engagement: Engagement, sources: dict[str, Source], notes: list[str]
) -> ServicePlan:
    guard, policy, lease_s = runtime_settings(engagement.receiver)
    pipelines = [
        Pipeline(
            name=wf.id,
            source=wf.source,
            actions=tuple(load_action(action.run) for action in wf.actions),
            event_types=tuple(wf.event_types or [wf.trigger]),
            ordering=Ordering(wf.ordering.object_id, wf.ordering.version)
            if wf.ordering
            else None,
        )
        for wf in engagement.workflows
    ]
    return ServicePlan(sources, pipelines, guard, policy, lease_s, notes)


def server_config(app: ASGIApp) -> uvicorn.Config:
    """The uvicorn settings hooklab serves with (the benchmark uses them too).

    Access logs are off (the receiver logs each outcome) and uvicorn's own
    X-Forwarded-For handling is off (the receiver applies its trusted-proxy rule).
    HTTP is parsed by httptools, which ``make bench`` measured at about 1.7 times
    the acknowledgements a second of the pure-Python h11 parser, with the header
    deadline, size limit and connection cap of ``hooklab.httpguard``; the event loop
    stays asyncio's, so serving inside a Jupyter kernel changes no global policy.
    """
    return uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=5,
        http=GuardedHttpTools,
        loop="asyncio",
    )


def run_service(
    plan: ServicePlan,
    ledger_path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 2,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve ``plan`` until stopped; ``announce`` hears the URL and routes once it
    listens."""
    sock = _listen(host, port)
    metrics = Metrics()

    with SqliteLedger(ledger_path) as ledger:
        processor = Processor(
            ledger,
            plan.pipelines,
            policy=plan.policy,
            lease_s=plan.lease_s,
            metrics=metrics,
        )
        app = create_app(
            plan.sources,
            ledger,
            guard=plan.guard,
            metrics=metrics,
            on_commit=processor.wake,
            writer="process",
        )
        bound_host, bound_port = sock.getsockname()[:2]
        base = f"http://{_url_host(bound_host)}:{bound_port}"
        routes = [
            f"  POST {base}/hooks/{name} ({source.verifier.scheme})"
            for name, source in sorted(plan.sources.items())
        ]
        routes.append(f"  GET {base}/healthz and {base}/metrics; ledger {ledger_path}")
        announce("\n".join([f"listening on {base}", *routes]))  # one write

        processor.start(workers)
        try:
            with _signals_end_serving():
                uvicorn.Server(server_config(app)).run(sockets=[sock])
        finally:
            processor.stop()
            sock.close()


@contextmanager
def _signals_end_serving() -> Iterator[None]:
    """Let Ctrl-C and SIGTERM end serving, then the workers, then return normally.

    uvicorn handles both signals while it runs and raises them again when it has
    stopped; a no-op handler here absorbs that second delivery, so the caller's
    clean-up (stopping the workers, closing the ledger) still runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: None)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _secrets_from(env: str, environ: Mapping[str, str] | None, who: str) -> list[str]:
    value = (os.environ if environ is None else environ).get(env, "")
    secrets = value.split()
    if not secrets:
        raise ConfigError(
            f"{who} reads its webhook secret from the environment variable {env}, "
            "which is not set; export it first (several secrets, separated by "
            "spaces, are accepted during a rotation)."
        )
    return secrets


def _listen(host: str, port: int) -> socket.socket:
    """Bind and listen, so the port is known (and reachable) before uvicorn runs."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly, as in hooklab.servers: it makes asyncio set
    # TCP_NODELAY on accepted connections.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"hooklab serve cannot listen on {host}:{port}: {exc.strerror}."
        ) from None
    sock.listen(2048)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
