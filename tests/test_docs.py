"""The generated integration document."""

from __future__ import annotations

import json
import re

from hooklab.spec import engagement_hash, example_path
from hooklab.studies.docs import (
    demote_headings,
    document_for,
    escape_markdown,
    integration_document,
    markdown_code,
    write_integration_document,
)
from hooklab.studies.scope import recommend


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


def test_sample_payload_is_in_the_clients_currency(example):
    client = example.client.model_copy(update={"currency": "EUR"})

    sample = _sample_json(
        document_for(example.model_copy(update={"client": client}), None, seed=1)
    )

    assert sample["currency"] == "EUR"


def test_events_table_names_the_provider_topics_to_subscribe_to(example):
    workflows = [
        wf.model_copy(update={"event_types": ["orders/create", "orders/paid"]})
        if wf.trigger == "order.created"
        else wf
        for wf in example.workflows
    ]
    engagement = example.model_copy(update={"workflows": workflows})

    document = document_for(engagement, None, seed=1)

    assert "| `order.created` | `orders/create`, `orders/paid` |" in document
    assert "| `invoice.paid` | every event of the source |" in document


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


def _hostile(example):
    """The example with markup and table pipes in every name a client types."""
    script = "<script>document.title='INJECTED'</script>"
    apps = [
        app.model_copy(update={"name": f"{app.name} | {script}"})
        for app in example.apps
    ]
    workflows = [
        wf.model_copy(
            update={
                "name": f"{script} & co | [x](javascript:alert(1))",
                "actions": [
                    a.model_copy(update={"does": f'say "hi" | `{script}` \\'})
                    for a in wf.actions
                ],
            }
        )
        for wf in example.workflows
    ]
    client = example.client.model_copy(update={"name": f"Acme | {script}"})
    return example.model_copy(
        update={"apps": apps, "workflows": workflows, "client": client}
    )


def test_document_escapes_markup_and_pipes_in_engagement_names(example):
    document = document_for(_hostile(example), None, seed=1)

    assert "<script" not in document
    assert "&lt;script&gt;document.title='INJECTED'&lt;/script&gt;" in document
    assert "Acme \\| &lt;script&gt;" in document
    assert "\\[x\\](javascript:alert(1))" in document
    assert "say &quot;hi&quot; \\| \\`" in document


def test_document_tables_keep_their_columns_when_rendered(example):
    """The report renders the Markdown with nbconvert's mistune; count its cells."""
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    page = markdown2html_mistune(document_for(_hostile(example), None, seed=1))

    assert "<script" not in page
    assert 'href="javascript:' not in page
    tables = re.findall(r"<table>(.*?)</table>", page, re.DOTALL)
    assert len(tables) == 3
    for table, columns in zip(tables, (6, 4, 5), strict=True):
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.DOTALL)
        assert len(rows) > 2
        assert {len(re.findall(r"<t[hd][ >]", row)) for row in rows} == {columns}


def test_markdown_code_falls_back_to_escaped_text_for_a_backtick_or_pipe():
    assert markdown_code("order.created") == "`order.created`"
    assert markdown_code("a|b") == "a\\|b"
    assert markdown_code("a`<b>") == "a\\`&lt;b&gt;"


def test_escape_markdown_puts_a_value_on_one_line():
    assert escape_markdown("Acme\nShop\r\n<b>") == "Acme Shop &lt;b&gt;"


def test_sample_payload_values_cannot_close_the_json_fence(example):
    """json.dumps escapes line breaks, so a ``` in a value never starts a line."""
    sample = {"note": "```\n<script>x</script>\n```", "nested": {"k": "```"}}
    document = integration_document(
        example,
        recommend(example),
        sample_type="order.created",
        sample=sample,
        engagement_sha256="0" * 64,
    )

    block = re.search(r"```json\n(.*?)\n```\n", document, re.DOTALL)
    assert block
    assert not any(line.lstrip().startswith("`") for line in block[1].splitlines())
    assert json.loads(block[1])["nested"] == {"k": "```"}
