"""The engagement file: one client's apps, workflows, secrets and checklist answers.

An engagement is written in YAML (``templates/engagement.yaml`` is a commented blank)
and loaded into the typed models below with :func:`load_engagement`. A file that does
not fit raises :class:`~hooklab.errors.ConfigError` with one message that lists every
problem by file, line and field path, with what was expected.

Secrets are only ever *named* here, by environment variable. Their values are read
with :func:`secret_value` at the moment they are needed and never stored on a model.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError

from hooklab.errors import ConfigError

__all__ = [
    "CHECKLIST_STEPS",
    "Action",
    "App",
    "Checklist",
    "ChecklistItem",
    "Client",
    "CurrentMethod",
    "Engagement",
    "OrderingKey",
    "RateLimit",
    "Receiver",
    "Roi",
    "Secret",
    "Workflow",
    "audit_problems",
    "engagement_hash",
    "example_path",
    "load_engagement",
    "secret_value",
]

_ID = r"^[a-z0-9][a-z0-9_-]*$"
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RUN = r"^(record|forward https?://\S+|[A-Za-z_][\w.]*:[A-Za-z_]\w*)$"
_PATH = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"

Id = Annotated[str, Field(pattern=_ID, description="lower-case id: letters, digits, -")]
Share = Annotated[float, Field(ge=0, le=1)]

#: The seven onboarding steps, in the order the checklist walks them.
CHECKLIST_STEPS: tuple[str, ...] = (
    "events_and_triggers",
    "data_schema",
    "authentication",
    "retries_and_idempotency",
    "slas",
    "monitoring_and_logs",
    "documentation",
)


class _Model(BaseModel):
    """Base for every engagement model: unknown keys are mistakes, not extras.

    Upper bounds on the numbers below are far beyond any small business (ten
    million events a day, a weekly poll); they exist so a typo cannot carry an
    absurd figure into a client's report.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Client(_Model):
    """Who the engagement is for."""

    name: str = Field(min_length=1)
    slug: str | None = Field(default=None, pattern=_ID)
    industry: str = ""
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")

    @property
    def folder_name(self) -> str:
        """The slug, or one derived from the name, for report folders."""
        if self.slug:
            return self.slug
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "client"


class RateLimit(_Model):
    """A provider API's published request limit."""

    requests: int = Field(gt=0)
    per_seconds: float = Field(gt=0)
    daily_cap: int | None = Field(default=None, gt=0)

    @property
    def per_second(self) -> float:
        """Sustained requests per second the limit allows."""
        return self.requests / self.per_seconds


class App(_Model):
    """One system the client uses: a shop, a helpdesk, an accounting package."""

    id: Id
    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    api_base_url: str | None = Field(default=None, pattern=r"^https?://")
    webhooks: bool = False
    signature_scheme: str | None = None
    rate_limit: RateLimit | None = None
    secret: str | None = None


class Action(_Model):
    """One thing a workflow does in a target app.

    ``run`` is what ``hooklab serve`` executes for it: ``record`` (the default),
    ``forward <url>`` or ``package.module:function``.
    """

    app: Id
    does: str = Field(min_length=1)
    run: str = Field(default="record", pattern=_RUN)


class OrderingKey(_Model):
    """Where a workflow's events name their object and its version (dotted paths)."""

    object_id: str = Field(pattern=_PATH)
    version: str = Field(pattern=_PATH)


class CurrentMethod(_Model):
    """How a workflow's events are picked up today."""

    method: Literal["poll", "manual", "webhook"]
    poll_interval_min: float | None = Field(default=None, ge=1 / 60, le=10_080)


class Workflow(_Model):
    """A trigger in one app that should cause actions in others."""

    id: Id
    name: str = Field(min_length=1)
    trigger: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    source: Id
    actions: list[Action] = Field(min_length=1)
    current: CurrentMethod
    events_per_day: float = Field(ge=0, le=10_000_000)
    latency_target_s: float = Field(gt=0, le=30 * 86_400)
    staff_minutes_per_event: float = Field(default=0, ge=0, le=1_440)
    error_rate_today: Share = 0
    critical: bool = False
    event_types: list[str] | None = None
    ordering: OrderingKey | None = None


class Secret(_Model):
    """A secret, named by the environment variable that holds it."""

    env: str
    purpose: str = ""

    @field_validator("env")
    @classmethod
    def _env_is_a_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise PydanticCustomError(
                "env_name",
                "expected the NAME of an environment variable (capitals, digits and "
                "underscores, such as SHOP_WEBHOOK_SECRET), never the secret itself",
            )
        return value


class ChecklistItem(_Model):
    """The client's answer to one onboarding step."""

    status: Literal["done", "in_progress", "todo", "not_applicable"] = "todo"
    notes: str = ""


class Checklist(_Model):
    """Answers to the seven onboarding steps (see ``CHECKLIST_STEPS``)."""

    events_and_triggers: ChecklistItem = ChecklistItem()
    data_schema: ChecklistItem = ChecklistItem()
    authentication: ChecklistItem = ChecklistItem()
    retries_and_idempotency: ChecklistItem = ChecklistItem()
    slas: ChecklistItem = ChecklistItem()
    monitoring_and_logs: ChecklistItem = ChecklistItem()
    documentation: ChecklistItem = ChecklistItem()


class Roi(_Model):
    """Money and effort inputs for the return-on-investment chapter."""

    hourly_cost: float = Field(ge=0, le=100_000)
    cost_per_error: float = Field(default=0, ge=0, le=1_000_000)
    automated_error_rate: Share = 0.01
    time_saved_share: Share = 0.7
    implementation_cost: float = Field(default=0, ge=0, le=1e9)
    upkeep_per_month: float = Field(default=0, ge=0, le=1e8)
    api_cost_per_1000_calls: float = Field(default=0, ge=0, le=10_000)


class Receiver(_Model):
    """How ``hooklab serve`` guards, stores and retries this client's webhooks."""

    allow: list[str] = []
    trusted_proxies: int = Field(default=0, ge=0)
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    body_timeout_s: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_s: float = Field(default=1.0, ge=0)
    retry_cap_s: float = Field(default=300.0, gt=0)
    lease_s: float = Field(default=30.0, gt=0)

    @field_validator("allow")
    @classmethod
    def _allow_is_cidr(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise PydanticCustomError(
                    "cidr",
                    "expected CIDR ranges such as 192.0.2.0/24, got '{entry}'",
                    {"entry": entry},
                ) from None
        return value


class Engagement(_Model):
    """One client engagement, as read from its YAML file."""

    client: Client
    apps: list[App] = Field(min_length=1)
    workflows: list[Workflow] = Field(min_length=1)
    secrets: dict[str, Secret] = {}
    checklist: Checklist = Checklist()
    roi: Roi
    receiver: Receiver = Receiver()

    def app(self, app_id: str) -> App:
        """The app with this id (the loader has checked every reference)."""
        return next(app for app in self.apps if app.id == app_id)


@dataclass(frozen=True)
class _Problem:
    loc: tuple[str | int, ...]
    message: str


def audit_problems(engagement: Engagement) -> list[str]:
    """What keeps a valid engagement from being audited, as sentences (none: ready).

    The lab and scale chapters compare push with polling, so at least one workflow
    must have a source app that sends webhooks and events to send.
    """
    pushed = [
        wf
        for wf in engagement.workflows
        if engagement.app(wf.source).webhooks and wf.events_per_day > 0
    ]
    if pushed:
        return []
    return [
        "hooklab audit needs at least one workflow whose source app sends webhooks "
        "(apps[].webhooks: true) with events_per_day above 0: the lab and scale "
        "chapters compare push with polling on that traffic."
    ]


def example_path() -> Path:
    """The embedded example engagement, ``templates/examples/acme-shop.yaml``."""
    # hooklab runs from its checkout (an editable install), so the templates folder
    # sits beside the package rather than inside it.
    return Path(__file__).resolve().parents[1] / "templates/examples/acme-shop.yaml"


def engagement_hash(path: str | Path) -> str:
    """SHA-256 of the engagement file's bytes, as the report quotes it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def secret_value(engagement: Engagement, name: str) -> str | None:
    """The value of the named secret from its environment variable, or None if unset."""
    try:
        secret = engagement.secrets[name]
    except KeyError:
        known = ", ".join(sorted(engagement.secrets)) or "none"
        raise ConfigError(
            f"The engagement names no secret {name!r} (known: {known})."
        ) from None
    return os.environ.get(secret.env) or None


def load_engagement(path: str | Path | None = None) -> Engagement:
    """Read and validate an engagement file; None means the embedded example."""
    path = Path(path) if path else example_path()
    text = _read_text(path)
    try:
        node = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML{_where(exc)}.") from None
    _check_shape(path, node)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # e.g. a list used as a key
        raise ConfigError(f"{path}: not valid YAML{_where(exc)}.") from None

    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with client, apps, workflows.")
    try:
        engagement = Engagement.model_validate(data)
    except ValidationError as exc:
        problems = [_problem_from_pydantic(error) for error in exc.errors()]
        raise ConfigError(_format(path, node, problems)) from None

    problems = list(_reference_problems(engagement))
    if problems:
        raise ConfigError(_format(path, node, problems))
    return engagement


#: More YAML nodes than any engagement needs: a file past this is refused before it
#: is expanded, so a few lines of nested aliases (a "billion laughs") cannot
#: exhaust memory.
MAX_NODES = 100_000


def _where(exc: yaml.YAMLError) -> str:
    """Line, column and problem of a YAML error, without PyYAML's quoted snippet.

    The snippet would repeat the offending line, which may hold a pasted secret.
    """
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "it cannot be parsed"
    if mark is None:
        return f": {problem}"
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _check_shape(path: Path, root: Any) -> None:
    """Refuse duplicate keys and runaway alias expansion before loading."""
    seen = 0
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(
                f"{path}: expands to more than {MAX_NODES:,} values (nested YAML "
                "aliases?); an engagement file is far smaller."
            )
        if isinstance(node, yaml.MappingNode):
            keys: set[Any] = set()
            for key_node, value in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    stack.append(value)  # a complex key: pydantic will refuse it
                    continue
                if key_node.value in keys:
                    raise ConfigError(
                        f"{path}: line {key_node.start_mark.line + 1}: the key "
                        f"{_short(key_node.value)} appears twice in the same mapping; "
                        "keep one."
                    )
                keys.add(key_node.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters so a message stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: The largest engagement file read; a real one is a few kilobytes.
MAX_ENGAGEMENT_BYTES = 1_000_000


def _read_text(path: Path) -> str:
    if path.exists() and not path.is_file():  # a FIFO would block the open
        raise ConfigError(f"{path}: not a regular file; give an engagement YAML file.")
    try:
        with path.open("rb") as stream:  # bounded: /dev/zero must not fill memory
            data = stream.read(MAX_ENGAGEMENT_BYTES + 1)
        if len(data) > MAX_ENGAGEMENT_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_ENGAGEMENT_BYTES:,} bytes; an engagement "
                "file is a few kilobytes of YAML. Is this the right file?"
            )
        return data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such engagement file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as UTF-8 text: {exc}") from None


def _problem_from_pydantic(error: Any) -> _Problem:
    loc = tuple(error["loc"])
    message = error["msg"]
    if error["type"] == "missing":
        message = "this field is required"
    elif error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling and indentation)"
    elif not _may_hold_a_secret(loc) and error["type"] != "env_name":
        # Values are echoed to help fix them, except where a user may have pasted
        # a secret itself: anything under 'secrets' and an app's 'secret'.
        message = f"{message} (got {_short(error['input'])})"
    return _Problem(loc, message)


def _may_hold_a_secret(loc: tuple[str | int, ...]) -> bool:
    return bool(loc) and (loc[0] == "secrets" or "secret" in loc or "env" in loc)


def _reference_problems(engagement: Engagement) -> Iterable[_Problem]:
    app_ids = [app.id for app in engagement.apps]
    yield from _duplicates(("apps",), app_ids)
    yield from _duplicates(("workflows",), [wf.id for wf in engagement.workflows])

    known_apps = ", ".join(app_ids)
    for i, app in enumerate(engagement.apps):
        if app.secret is not None and app.secret not in engagement.secrets:
            yield _Problem(
                ("apps", i, "secret"),
                "names a secret that is not under 'secrets' (expected the name of "
                "an entry there, such as shop_webhook; what it holds is not shown, "
                "in case a secret itself was pasted here)",
            )
    for i, wf in enumerate(engagement.workflows):
        if wf.source not in app_ids:
            yield _Problem(
                ("workflows", i, "source"),
                f"expected one of the apps ({known_apps}), got {wf.source!r}",
            )
        for j, action in enumerate(wf.actions):
            if action.app not in app_ids:
                yield _Problem(
                    ("workflows", i, "actions", j, "app"),
                    f"expected one of the apps ({known_apps}), got {action.app!r}",
                )
        if wf.current.method == "poll" and wf.current.poll_interval_min is None:
            yield _Problem(
                ("workflows", i, "current", "poll_interval_min"),
                "required when method is 'poll'",
            )


def _duplicates(loc: tuple[str, ...], ids: Sequence[str]) -> Iterable[_Problem]:
    for i, item_id in enumerate(ids):
        if item_id in ids[:i]:
            yield _Problem((*loc, i, "id"), f"id {item_id!r} is used twice")


def _format(path: Path, node: Any, problems: list[_Problem]) -> str:
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    lines = [f"{path} is not a valid engagement file ({count}):"]
    for problem in problems:
        line = _line_of(node, problem.loc)
        where = f"line {line}: " if line else ""
        lines.append(f"  {where}{_dotted(problem.loc)}: {problem.message}")
    return "\n".join(lines)


def _dotted(loc: tuple[str | int, ...]) -> str:
    """A location as the user would write it: ``workflows[0].current.method``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(node: Any, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based YAML line of the deepest part of ``loc`` that the file has."""
    line = None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if k.value == part]
            if not match:
                break
            key = next(k for k, v in node.value if k.value == part)
            line, node = key.start_mark.line + 1, match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
