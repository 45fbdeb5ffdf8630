"""The engagement fields `hooklab serve` reads: actions, ordering, receiver."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from hooklab.errors import ConfigError
from hooklab.processing import Ordering
from hooklab.service import plan_from_engagement
from hooklab.spec import Engagement, example_path, load_engagement

SECRET = "whsec_" + base64.b64encode(b"spec-runtime-test-key-0123456").decode()
TEMPLATE = Path(__file__).resolve().parents[1] / "templates" / "engagement.yaml"

BASE = {
    "client": {"name": "Bakery"},
    "apps": [
        {
            "id": "shop",
            "name": "Shop",
            "provider": "internal",
            "webhooks": True,
            "signature_scheme": "standard-webhooks",
            "secret": "shop_hook",
        },
        {"id": "desk", "name": "Helpdesk", "provider": "zendesk", "webhooks": True},
    ],
    "workflows": [
        {
            "id": "new-order",
            "name": "New order opens a ticket",
            "trigger": "order.created",
            "source": "shop",
            "actions": [{"app": "desk", "does": "open a ticket"}],
            "current": {"method": "manual"},
            "events_per_day": 10,
            "latency_target_s": 60,
        }
    ],
    "secrets": {"shop_hook": {"env": "BAKERY_SHOP_SECRET"}},
    "roi": {"hourly_cost": 30},
}


def _load(tmp_path: Path, **changes: object) -> Engagement:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    path = tmp_path / "bakery.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_engagement(path)


@pytest.mark.parametrize("path", [example_path(), TEMPLATE], ids=["example", "blank"])
def test_shipped_engagements_still_load_with_receiver_defaults(path: Path) -> None:
    engagement = load_engagement(path)

    assert engagement.receiver.max_body_bytes == 1_048_576
    runs = {a.run for wf in engagement.workflows for a in wf.actions}
    assert runs == {"record"}


def test_action_run_defaults_to_record(tmp_path: Path) -> None:
    engagement = _load(tmp_path)

    assert engagement.workflows[0].actions[0].run == "record"


@pytest.mark.parametrize(
    "run",
    ["record", "forward https://desk.example.com/hooks", "bakery.tickets:open"],
    ids=["record", "forward", "callable"],
)
def test_action_run_accepts_the_three_forms(tmp_path: Path, run: str) -> None:
    engagement = _load(tmp_path, workflows__0__actions__0__run=run)

    assert engagement.workflows[0].actions[0].run == run


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"workflows__0__actions__0__run": "rm -rf /"}, "actions[0].run"),
        (
            {"workflows__0__ordering": {"object_id": "a b", "version": "v"}},
            "ordering.object_id",
        ),
        ({"receiver": {"allow": ["10.0.0.0/33"]}}, "receiver.allow"),
        ({"receiver": {"max_attempts": 0}}, "receiver.max_attempts"),
    ],
    ids=["bad-run", "bad-path", "bad-cidr", "zero-attempts"],
)
def test_bad_runtime_field_names_line_and_field(
    tmp_path: Path, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(ConfigError, match=r"line \d+: .*" + field.replace("[", r"\[")):
        _load(tmp_path, **changes)


def test_bad_cidr_message_quotes_the_entry(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, receiver={"allow": ["not-a-cidr"]})

    assert "got 'not-a-cidr'" in str(caught.value)
    assert "{entry" not in str(caught.value)


def test_plan_from_engagement_serves_signed_apps_and_notes_the_rest(
    tmp_path: Path,
) -> None:
    engagement = _load(tmp_path, receiver={"allow": ["10.0.0.0/8"], "max_attempts": 3})

    plan = plan_from_engagement(engagement, {"BAKERY_SHOP_SECRET": SECRET})

    assert list(plan.sources) == ["shop"]
    assert "'desk' is not served" in plan.notes[0]
    [pipeline] = plan.pipelines
    assert (pipeline.name, pipeline.source, pipeline.event_types) == (
        "new-order",
        "shop",
        ("order.created",),
    )
    assert plan.policy.max_attempts == 3
    assert [str(n) for n in plan.guard.allow] == ["10.0.0.0/8"]


def test_plan_from_engagement_event_types_and_ordering(tmp_path: Path) -> None:
    engagement = _load(
        tmp_path,
        workflows__0__event_types=["orders/create", "orders/updated"],
        workflows__0__ordering={"object_id": "id", "version": "updated_at"},
    )

    [pipeline] = plan_from_engagement(
        engagement, {"BAKERY_SHOP_SECRET": SECRET}
    ).pipelines

    assert pipeline.event_types == ("orders/create", "orders/updated")
    assert pipeline.ordering == Ordering("id", "updated_at")


def test_plan_from_engagement_secret_unset_names_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="BAKERY_SHOP_SECRET, which is not set"):
        plan_from_engagement(_load(tmp_path), {})


def test_plan_from_engagement_names_every_unset_secret_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_from_engagement(load_engagement(example_path()), {})

    message = str(caught.value)
    assert "ACME_SHOP_WEBHOOK_SECRET, which is not set" in message
    assert "ACME_BILLING_WEBHOOK_SECRET, which is not set" in message


def test_plan_from_engagement_nothing_signed_raises(tmp_path: Path) -> None:
    engagement = _load(tmp_path, apps__0__webhooks=False)

    with pytest.raises(ConfigError, match="nothing to serve"):
        plan_from_engagement(engagement, {"BAKERY_SHOP_SECRET": SECRET})


def test_plan_secret_variable_with_two_secrets_accepts_both(tmp_path: Path) -> None:
    """During a rotation the variable holds the old and the new secret."""
    old = "whsec_" + base64.b64encode(b"the-old-secret-0123456789abcd").decode()

    plan = plan_from_engagement(
        _load(tmp_path), {"BAKERY_SHOP_SECRET": f"{old} {SECRET}"}
    )

    assert "2 hidden" in repr(plan.sources["shop"].verifier)
