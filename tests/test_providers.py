"""Tests for hooklab.providers: the presets keep to the published facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hooklab.errors import ConfigError
from hooklab.providers import PRESETS, preset

FIELDS = ("max_attempts", "give_up_after_s", "response_timeout_s")


def test_presets_match_shared_provider_facts(shared_data: Path) -> None:
    """Every number agrees with provider_presets.json, and every null stays None."""
    facts = json.loads((shared_data / "provider_presets.json").read_text())

    for entry in facts["providers"]:
        kept = PRESETS[entry["provider"]]
        for name in FIELDS:
            assert (entry["provider"], name, getattr(kept, name)) == (
                entry["provider"],
                name,
                entry[name],
            )
        assert kept.as_of == entry["as_of"]
        assert set(kept.sources) <= set(entry["source_urls"])


def test_presets_retry_delays_follow_published_lists(shared_data: Path) -> None:
    facts = {
        entry["provider"]: entry["retry_schedule_s"]
        for entry in json.loads((shared_data / "provider_presets.json").read_text())[
            "providers"
        ]
    }

    assert PRESETS["svix"].retry_delays_s == tuple(facts["svix"][1:])
    assert PRESETS["slack"].retry_delays_s == tuple(facts["slack"])
    assert PRESETS["github"].retry_delays_s == ()
    unpublished = [name for name, listed in facts.items() if isinstance(listed, str)]
    assert all(PRESETS[name].retry_delays_s is None for name in unpublished)


def test_every_unpublished_value_has_a_note() -> None:
    for kept in PRESETS.values():
        for name in ("retry_delays_s", *FIELDS):
            if getattr(kept, name) is None:
                assert name in kept.notes, (kept.provider, name)


def test_preset_unknown_provider_lists_known() -> None:
    with pytest.raises(ConfigError, match="known: github, hubspot"):
        preset("pigeon-post")
