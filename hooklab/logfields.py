"""hooklab's log lines: an event name, then its fields as ``key=value``.

Kept apart from the command line (no click) so that the ledger writer process,
which logs the same way, starts quickly.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

__all__ = ["FieldsFormatter", "configure_logging"]


#: The attributes every log record has; anything else was passed with ``extra=``.
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class FieldsFormatter(logging.Formatter):
    """A formatter that appends a record's ``extra=`` fields as ``key=value``.

    hooklab logs events as a short name plus fields (``webhook.rejected`` with
    ``source`` and ``reason``); a plain format string would drop the fields.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}
        if not fields:
            return line
        return line + " " + " ".join(f"{k}={_field_text(v)}" for k, v in fields.items())


def _field_text(value: object) -> str:
    """The value as is when it is one printable word, else quoted with escapes,
    so a sender's text cannot break a log line or smuggle terminal codes in."""
    text = str(value)
    plain = text.isprintable() and not any(c.isspace() or c in "\"'=" for c in text)
    return text if text and plain else repr(text)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: int, layout: str, *, exactly: bool = False) -> None:
    """Log to stderr with ``layout`` and each record's fields, at ``level``.

    ``exactly`` sets the level (each command starts so); otherwise it is only ever
    lowered, so a command adjusting the layout keeps -v. A host program's own
    logging is left as it is.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _StderrHandler)]
    if root.handlers and not ours:
        root.setLevel(min(level, root.level or level))
        return
    if not ours:
        ours = [_StderrHandler()]
        root.addHandler(ours[0])
        exactly = True
    ours[0].setFormatter(FieldsFormatter(layout))
    root.setLevel(level if exactly else min(level, root.level))
