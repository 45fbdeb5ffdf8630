"""Counts in sentences: "1 workflow", "3 workflows", "1 API call a day"."""

from __future__ import annotations

__all__ = ["counted", "agrees"]


def counted(count: float, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless the count is exactly one.

    Whole counts print with thousands separators ("1,200 API calls"); the plural
    is ``noun`` + "s" unless given.
    """
    shown = f"{count:,.0f}" if float(count).is_integer() else f"{count:,.1f}"
    word = noun if shown == "1" else (plural or noun + "s")
    return f"{shown} {word}"


def agrees(subjects: int, singular: str, plural: str) -> str:
    """The verb form for one subject or several: agrees(1, "signs", "sign")."""
    return singular if subjects == 1 else plural
