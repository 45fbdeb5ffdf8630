"""The generated integration document."""

from __future__ import annotations

import json
import re

from hooklab.spec import engagement_hash, example_path
from hooklab.studies.docs import (
    demote_headings,
    document_for,
    write_integration_document,
)


def _sample_json(document: str) -> dict:
    block = re.search(r"```json\n(.*?)\n```", document, re.DOTALL)
    assert block, "the document has no sample payload block"
    return json.loads(block.group(1))


def test_document_has_every_section_and_workflow(example):
    document = document_for(example, None, seed=1)

    for heading in (
        "## Flows",
        "## Endpoints",
        "## Events",
        "## Sample payload",
        "## Recovery",
    ):
        assert heading in document
    for wf in example.workflows:
        assert wf.name in document
    assert engagement_hash(example_path())[:12] in document


def test_endpoints_name_secrets_by_variable_only(example, monkeypatch):
    monkeypatch.setenv("ACME_SHOP_WEBHOOK_SECRET", "whsec_value_never_documented")

    document = document_for(example, None, seed=1)

    assert "`POST https://hooks.example.com/hooks/shop`" in document
    assert "`ACME_SHOP_WEBHOOK_SECRET`" in document
    assert "whsec_value_never_documented" not in document


def test_sample_payload_is_the_first_pushed_trigger_with_people_redacted(example):
    document = document_for(example, None, seed=1)

    assert "One `order.created` delivery" in document
    sample = _sample_json(document)
    text = json.dumps(sample)
    assert "@" not in text
    assert "Example" not in text  # fictitious names are redacted all the same
    assert "[redacted" in text


def test_document_is_the_same_for_the_same_seed(example):
    first = document_for(example, None, seed=3).split("\n", 4)[-1]
    again = document_for(example, None, seed=3).split("\n", 4)[-1]
    assert first == again


def test_write_puts_it_under_docs(tmp_path):
    path = write_integration_document("# Doc\n", tmp_path)
    assert path == tmp_path / "docs" / "integration.md"
    assert path.read_text() == "# Doc\n"


def test_demote_headings_moves_every_level_down_but_leaves_code_alone():
    text = "# Title\n\n## Flows\n\nissue #12\n```json\n{}\n```\n"
    assert (
        demote_headings(text)
        == "## Title\n\n### Flows\n\nissue #12\n```json\n{}\n```\n"
    )
