"""Why a webhook delivery was refused: one subclass of SignatureError per reason.

Each error names the header concerned and what was wrong with it. None of them ever
carries a secret, an expected signature or the raw body, in its message or its repr.
"""

from __future__ import annotations

from hooklab.errors import SignatureError

__all__ = [
    "MalformedHeader",
    "MissingHeader",
    "SignatureError",
    "SignatureMismatch",
    "TimestampOutOfTolerance",
]


class _HeaderError(SignatureError):
    """A refusal that concerns one named header."""

    def __init__(self, header: str, message: str) -> None:
        super().__init__(message)
        self.header = header

    def __repr__(self) -> str:
        return f"{type(self).__name__}(header={self.header!r}, message={str(self)!r})"


class MissingHeader(_HeaderError):
    """A header the scheme requires is absent from the delivery."""


class MalformedHeader(_HeaderError):
    """A header is present but its value cannot be parsed."""


class TimestampOutOfTolerance(_HeaderError):
    """The signed timestamp is too old or too far in the future."""


class SignatureMismatch(_HeaderError):
    """No signature in the header matches the body under any configured secret."""
