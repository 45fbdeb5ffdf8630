"""The engagement file: loading, validation messages and secrets by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from hooklab.errors import ConfigError
from hooklab.spec import (
    CHECKLIST_STEPS,
    engagement_hash,
    example_path,
    load_engagement,
    secret_value,
)

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _write(tmp_path: Path, data: object, name: str = "e.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _example_data() -> dict:
    return yaml.safe_load(example_path().read_text(encoding="utf-8"))


def test_example_loads_with_the_scoped_workflows(example):
    """The embedded example describes the shop in the brief."""
    assert example.client.folder_name == "acme-shop"
    triggers = [wf.trigger for wf in example.workflows]
    assert triggers == [
        "order.created",
        "invoice.paid",
        "subscription.cancelled",
        "form.submitted",
        "order.fulfilled",
    ]
    new_order = example.workflows[0]
    assert [a.app for a in new_order.actions] == ["helpdesk", "inventory", "email"]
    assert new_order.current.poll_interval_min == 10
    assert new_order.error_rate_today == pytest.approx(0.06)
    hours = sum(
        wf.events_per_day * 7 * wf.staff_minutes_per_event / 60
        for wf in example.workflows
    )
    assert hours == pytest.approx(5.0, abs=0.05)


def test_blank_template_is_itself_valid():
    """templates/engagement.yaml loads, so a copy starts from something that works."""
    engagement = load_engagement(TEMPLATES / "engagement.yaml")
    assert engagement.client.name == "Client name"


def test_load_without_path_uses_the_example():
    assert load_engagement(None).client.name == "Acme Shop"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        pytest.param(
            lambda d: d["workflows"][0].update(events_per_day="lots"),
            r"workflows\[0\]\.events_per_day: Input should be a valid number.*'lots'",
            id="not-a-number",
        ),
        pytest.param(
            lambda d: d["workflows"][0].update(error_rate_today=6),
            r"workflows\[0\]\.error_rate_today: Input should be less than or equal",
            id="rate-over-one",
        ),
        pytest.param(
            lambda d: d["workflows"][1]["current"].update(method="carrier pigeon"),
            r"workflows\[1\]\.current\.method: Input should be 'poll', 'manual' or",
            id="unknown-method",
        ),
        pytest.param(
            lambda d: d["apps"][0].update(webhoks=True),
            r"apps\[0\]\.webhoks: unknown field",
            id="misspelt-field",
        ),
        pytest.param(
            lambda d: d.pop("roi"),
            r"roi: this field is required",
            id="missing-section",
        ),
        pytest.param(
            lambda d: d["workflows"][3].update(source="website"),
            r"workflows\[3\]\.source: expected one of the apps \(shop, .*'website'",
            id="unknown-source-app",
        ),
        pytest.param(
            lambda d: d["workflows"][0]["actions"][1].update(app="erp"),
            r"workflows\[0\]\.actions\[1\]\.app: expected one of the apps",
            id="unknown-action-app",
        ),
        pytest.param(
            lambda d: d["apps"][1].update(id="shop"),
            r"apps\[1\]\.id: id 'shop' is used twice",
            id="duplicate-app-id",
        ),
        pytest.param(
            lambda d: d["workflows"][0]["current"].pop("poll_interval_min"),
            r"workflows\[0\]\.current\.poll_interval_min: required when method is",
            id="poll-without-interval",
        ),
        pytest.param(
            lambda d: d["apps"][0].update(secret="nope"),
            r"apps\[0\]\.secret: names a secret that is not under 'secrets'",
            id="unknown-secret-name",
        ),
    ],
)
def test_invalid_file_names_file_field_and_expectation(tmp_path, mutate, expected):
    data = _example_data()
    mutate(data)
    path = _write(tmp_path, data)

    with pytest.raises(ConfigError, match=expected) as caught:
        load_engagement(path)

    assert str(caught.value).startswith(f"{path} is not a valid engagement file")


def test_invalid_field_message_gives_its_yaml_line(tmp_path):
    """The line number points at the offending key in the user's own file."""
    text = example_path().read_text(encoding="utf-8")
    text = text.replace("events_per_day: 60", "events_per_day: sixty")
    path = tmp_path / "e.yaml"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("    events_per_day: sixty") + 1

    with pytest.raises(ConfigError, match=rf"line {line}: workflows\[0\]\.events_"):
        load_engagement(path)


def test_every_problem_is_listed_in_one_message(tmp_path):
    data = _example_data()
    data["workflows"][0]["events_per_day"] = -1
    data["workflows"][2]["latency_target_s"] = 0
    path = _write(tmp_path, data)

    with pytest.raises(ConfigError, match=r"\(2 problems\)") as caught:
        load_engagement(path)

    assert "workflows[0].events_per_day" in str(caught.value)
    assert "workflows[2].latency_target_s" in str(caught.value)


def test_pasted_secret_value_is_refused_without_echoing_it(tmp_path):
    """A secret's value where its variable's name belongs is refused and not shown."""
    data = _example_data()
    data["secrets"]["shop_api"]["env"] = "shpat_9f8e7d6c5b4a"
    path = _write(tmp_path, data)

    with pytest.raises(
        ConfigError, match=r"secrets\.shop_api\.env: expected the NAME"
    ) as caught:
        load_engagement(path)

    assert "shpat_9f8e7d6c5b4a" not in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("client: [unclosed", r"not valid YAML", id="yaml-syntax"),
        pytest.param("- just\n- a list\n", r"expected a mapping", id="not-a-mapping"),
        pytest.param(b"\xff\xfe client", r"cannot be read as UTF-8", id="not-utf8"),
    ],
)
def test_unreadable_file_is_a_config_error(tmp_path, content, expected):
    path = tmp_path / "e.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigError, match=expected):
        load_engagement(path)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"no such engagement file"):
        load_engagement(tmp_path / "absent.yaml")


def test_secret_value_reads_the_named_variable(example, monkeypatch):
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "whsec_from_the_environment")
    assert secret_value(example, "shop_webhook") == "whsec_from_the_environment"

    monkeypatch.delenv("ACME_SHOP_WEBHOOK_SECRET")
    assert secret_value(example, "shop_webhook") is None


def test_secret_value_of_an_unknown_name_lists_the_known_ones(example):
    with pytest.raises(ConfigError, match=r"no secret 'nope' \(known: billing_webhook"):
        secret_value(example, "nope")


def test_secret_values_are_not_held_on_the_model(example, monkeypatch):
    """Dumping the model cannot leak a secret: it only ever holds names."""
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "whsec_never_in_a_dump")
    assert "whsec_never_in_a_dump" not in example.model_dump_json()


def test_checklist_has_the_seven_steps(example):
    assert len(CHECKLIST_STEPS) == 7
    assert example.checklist.slas.status == "done"


def test_engagement_hash_is_the_file_sha256(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_bytes(b"abc")
    expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert engagement_hash(path) == expected


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(
            "shop_webhook: {env: ACME_SHOP_WEBHOOK_SECRET, purpose: verifies the "
            "shop's webhooks}",
            f"shop_webhook: {SECRET}",
            id="secret-as-the-whole-entry",
        ),
        pytest.param("secret: shop_webhook", f"secret: {SECRET}", id="app-secret"),
        pytest.param(
            "env: ACME_SHOP_WEBHOOK_SECRET", f"env: {SECRET}: x", id="yaml-error-line"
        ),
    ],
)
def test_pasted_secret_never_appears_in_the_message(tmp_path, old, new):
    """Wherever a secret is pasted, the refusal names the place, never the value."""
    text = example_path().read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "e.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_engagement(path)

    assert SECRET not in str(caught.value)
    assert SECRET[6:20] not in str(caught.value)


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("client:\n  name: [unclosed\nroi: {}\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+: "):
        load_engagement(path)


def test_nested_aliases_are_refused_before_they_expand(tmp_path):
    """A 'billion laughs' file of a few lines is refused quickly and in one line."""
    lines = ["a0: &a0 [" + ", ".join(["lol"] * 10) + "]"]
    for level in range(1, 9):
        lines.append(
            f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]"
        )
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nclient: {name: *a8}\n", encoding="utf-8")

    with pytest.raises(
        ConfigError, match=r"expands to more than 100,000 values"
    ) as caught:
        load_engagement(path)

    assert len(str(caught.value)) < 300


def test_duplicate_keys_are_refused_with_their_line(tmp_path):
    text = example_path().read_text(encoding="utf-8")
    text = text.replace(
        "  slug: acme-shop\n", "  slug: acme-shop\n  slug: other-shop\n"
    )
    path = tmp_path / "e.yaml"
    path.write_text(text, encoding="utf-8")
    line = text.splitlines().index("  slug: other-shop") + 1

    with pytest.raises(
        ConfigError, match=rf"line {line}: the key 'slug' appears twice"
    ):
        load_engagement(path)


def test_long_values_are_cut_in_messages(tmp_path):
    data = _example_data()
    data["client"]["currency"] = "X" * 200_000
    path = _write(tmp_path, data)

    with pytest.raises(ConfigError, match=r"client\.currency: ") as caught:
        load_engagement(path)

    assert len(str(caught.value)) < 500


@pytest.mark.parametrize(
    ("section", "field", "value"),
    [
        ("roi", "hourly_cost", float("inf")),
        ("roi", "hourly_cost", 1e308),
        ("workflow", "events_per_day", 1e300),
        ("workflow", "events_per_day", float("nan")),
        ("current", "poll_interval_min", 1e-9),
        ("current", "poll_interval_min", 1_000_000),
    ],
)
def test_absurd_numbers_are_refused(tmp_path, section, field, value):
    """A typo cannot carry an infinite or astronomical figure into a report."""
    data = _example_data()
    target = {
        "roi": data["roi"],
        "workflow": data["workflows"][0],
        "current": data["workflows"][0]["current"],
    }[section]
    target[field] = value

    with pytest.raises(ConfigError, match=rf"\.{field}: "):
        load_engagement(_write(tmp_path, data))


def test_audit_needs_a_webhook_source_with_traffic(example):
    from hooklab.spec import audit_problems

    assert audit_problems(example) == []
    quiet = [wf.model_copy(update={"events_per_day": 0}) for wf in example.workflows]
    problems = audit_problems(example.model_copy(update={"workflows": quiet}))
    assert problems and problems[0].startswith("hooklab audit needs at least one")


def test_a_list_used_as_a_key_is_a_config_error(tmp_path):
    path = tmp_path / "e.yaml"
    path.write_text("client: {name: x}\n? [a, b]\n: 1\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"line 2, column 3: found unhashable key"):
        load_engagement(path)


def test_engagement_file_too_large_is_refused_after_a_bounded_read(tmp_path):
    """A 50 MB file, or /dev/zero, is not read whole into memory."""
    path = tmp_path / "huge.yaml"
    path.write_text("client:\n  name: " + "x" * 2_000_000 + "\n")

    with pytest.raises(ConfigError, match="larger than 1,000,000 bytes"):
        load_engagement(path)


def test_engagement_path_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "engagement.yaml"
    os.mkfifo(fifo)

    with pytest.raises(ConfigError, match="not a regular file"):
        load_engagement(fifo)
