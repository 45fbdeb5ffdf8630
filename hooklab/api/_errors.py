"""The errors of ``hooklab.api``: each carries the request it concerns."""

from __future__ import annotations

import httpx

from hooklab.errors import ApiError

__all__ = ["ApiAuthError", "ApiRequestError", "ApiResponseError", "where"]


class ApiRequestError(ApiError):
    """An API request failed; ``request``, ``status_code`` and ``response`` say how.

    ``status_code`` and ``response`` are None when no answer came at all.
    """

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request,
        status_code: int | None = None,
        response: httpx.Response | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.status_code = status_code
        self.response = response

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self)!r}, method={self.request.method!r}, "
            f"url={where(self.request)!r}, status_code={self.status_code!r})"
        )


class ApiResponseError(ApiRequestError):
    """An answer came but is not what the API promises (not JSON, no page fields)."""


class ApiAuthError(ApiRequestError):
    """No valid credentials could be had: the token endpoint refused or failed."""


def where(request: httpx.Request) -> str:
    """The URL without its query, which may carry credentials."""
    return str(request.url.copy_with(query=None))
