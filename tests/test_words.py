"""Counts in the chapters' sentences agree with their nouns and verbs."""

from __future__ import annotations

import pytest

from hooklab.studies._words import agrees, counted
from hooklab.studies.checklist import _mid_sentence


@pytest.mark.parametrize(
    ("count", "noun", "expected"),
    [
        (1, "workflow", "1 workflow"),
        (0, "workflow", "0 workflows"),
        (3, "critical workflow", "3 critical workflows"),
        (1200, "API call", "1,200 API calls"),
        (1.5, "event", "1.5 events"),
    ],
)
def test_counted_agrees_with_its_count(count: float, noun: str, expected: str) -> None:
    assert counted(count, noun) == expected


def test_agrees_picks_the_verb_for_one_or_several() -> None:
    assert (agrees(1, "signs", "sign"), agrees(2, "signs", "sign")) == ("signs", "sign")


@pytest.mark.parametrize(
    ("title", "expected"),
    [("SLAs", "SLAs"), ("Retries and backoff", "retries and backoff"), ("", "")],
)
def test_checklist_titles_read_mid_sentence_keeping_acronyms(
    title: str, expected: str
) -> None:
    assert _mid_sentence(title) == expected
