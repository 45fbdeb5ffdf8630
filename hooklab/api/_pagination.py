"""Pagination styles: how a list endpoint says where its next page is.

Each style turns one answer into a ``Page``: its items, and where the next page
is (or None on the last page). The client walks any of them the same way.

- ``Cursor``: ``starting_after=<last id>`` while ``has_more`` (Stripe's lists);
- ``NextLink``: a URL to the next page in the body (``"next": "..."``);
- ``LinkHeader``: ``Link: <...>; rel="next"`` (RFC 8288; GitHub, Shopify);
- ``PageNumber``: ``page=1, 2, ...`` until a short page;
- ``Offset``: ``offset=0, 100, ...`` until a short page or the stated total.

A page that breaks its style's promise (a missing field, ``has_more`` with nothing
to continue from) raises ``ApiResponseError``: a walk never ends early as if the
list were complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from hooklab.api._errors import ApiResponseError, where

__all__ = [
    "Cursor",
    "LinkHeader",
    "NextLink",
    "Offset",
    "Page",
    "PageNumber",
    "Paginator",
    "broken_page",
    "json_body",
    "parse_link_header",
]

Params = dict[str, str]

_LINK_PARAM = re.compile(r'\s*;\s*([^\s;=,]+)\s*(?:=\s*("[^"]*"|[^;,]*))?')


@dataclass(frozen=True)
class Page:
    """One page: its items, and where the next page is (None after the last).

    ``next_url`` is an absolute URL to follow as it is; otherwise the next page is
    the same route with ``next_params``.
    """

    items: list[dict[str, Any]]
    next_params: Params | None = None
    next_url: str | None = None

    @property
    def last(self) -> bool:
        """Whether no page follows this one."""
        return self.next_params is None and self.next_url is None


class Paginator(Protocol):
    """A pagination style: the first page's parameters, and how to read a page."""

    def first(self, params: Mapping[str, str]) -> Params:
        """The query parameters of the first page, given the caller's own."""
        ...

    def read(self, response: httpx.Response, params: Mapping[str, str]) -> Page:
        """Read one answer (sent with ``params``) into a page."""
        ...


@dataclass(frozen=True)
class Cursor:
    """``param=<id of the last item>`` while the body says ``has_more``."""

    param: str = "starting_after"
    limit: int = 100
    limit_param: str = "limit"
    items: str = "data"
    has_more: str = "has_more"
    id_field: str = "id"

    def first(self, params: Mapping[str, str]) -> Params:
        """The caller's parameters plus the page size."""
        return {self.limit_param: str(self.limit), **params}

    def read(self, response: httpx.Response, params: Mapping[str, str]) -> Page:
        """Items from ``items``; continue after the last id while ``has_more``."""
        body = _json_object(response)
        items = _items(body, self.items, response)
        more = _field(body, self.has_more, response)
        if not isinstance(more, bool):
            raise broken_page(response, f'"{self.has_more}" is not true or false')
        if not more:
            return Page(items)

        last = items[-1].get(self.id_field) if items else None
        if not isinstance(last, str | int) or isinstance(last, bool) or last == "":
            raise broken_page(
                response,
                f'it says "{self.has_more}": true but its last item has no '
                f'"{self.id_field}" to continue from',
            )
        return Page(items, next_params={**params, self.param: str(last)})


@dataclass(frozen=True)
class NextLink:
    """Follow the URL in the body field ``next`` (a dotted path) until it is empty.

    A missing or null ``next`` ends the walk: many APIs leave it out of the last
    page. A relative link is resolved against the page's own URL.
    """

    next: str = "next"
    items: str = "results"
    limit: int | None = None
    limit_param: str = "limit"

    def first(self, params: Mapping[str, str]) -> Params:
        """The caller's parameters, plus the page size when one is set."""
        if self.limit is None:
            return dict(params)
        return {self.limit_param: str(self.limit), **params}

    def read(self, response: httpx.Response, params: Mapping[str, str]) -> Page:
        """Items from ``items``; the next page is the link, if any."""
        body = _json_object(response)
        items = _items(body, self.items, response)
        link = _dig(body, self.next)
        if link in (None, ""):
            return Page(items)

        if not isinstance(link, str):
            raise broken_page(response, f'"{self.next}" is not a URL')
        return Page(items, next_url=str(response.request.url.join(link)))


@dataclass(frozen=True)
class LinkHeader:
    """Follow the ``Link`` header's ``rel="next"`` (RFC 8288) until there is none.

    ``items`` names the body field holding the list; None when the body is the
    list itself (GitHub, Shopify).
    """

    rel: str = "next"
    items: str | None = None
    limit: int | None = 100
    limit_param: str = "per_page"

    def first(self, params: Mapping[str, str]) -> Params:
        """The caller's parameters, plus the page size when one is set."""
        if self.limit is None:
            return dict(params)
        return {self.limit_param: str(self.limit), **params}

    def read(self, response: httpx.Response, params: Mapping[str, str]) -> Page:
        """Items from the body; the next page is the header's link, if any."""
        items = _items(json_body(response), self.items, response)
        links = parse_link_header(response.headers.get("link", ""))
        target = links.get(self.rel)
        if not target:
            return Page(items)
        return Page(items, next_url=str(response.request.url.join(target)))


@dataclass(frozen=True)
class PageNumber:
    """``param=start, start+1, ...`` until a page holds fewer than ``size`` items."""

    param: str = "page"
    size: int = 100
    size_param: str = "per_page"
    start: int = 1
    items: str | None = None

    def first(self, params: Mapping[str, str]) -> Params:
        """The caller's parameters, the page size and the first page number."""
        return {self.size_param: str(self.size), self.param: str(self.start), **params}

    def read(self, response: httpx.Response, params: Mapping[str, str]) -> Page:
        """A full page may be followed by another; a short or empty one is last."""
        items = _items(json_body(response), self.items, response)
        if len(items) < self.size:
            return Page(items)

        number = _int_param(params, self.param, self.start)
        return Page(items, next_params={**params, self.param: str(number + 1)})


@dataclass(frozen=True)
class Offset:
    """``param=0, limit, 2*limit, ...`` until a short page or the stated total.

    ``total`` names the body field with the number of items in the whole list,
    when the API sends one (``count``); None relies on the short page alone.
    """

    param: str = "offset"
    limit: int = 100
    limit_param: str = "limit"
    items: str | None = "results"
    total: str | None = None

    def first(self, params: Mapping[str, str]) -> Params:
        """The caller's parameters, the page size and offset 0."""
        return {self.limit_param: str(self.limit), self.param: "0", **params}

    def read(self, response: httpx.Response, params: Mapping[str, str]) -> Page:
        """Continue at ``offset + len(items)`` while items remain."""
        body = json_body(response)
        items = _items(body, self.items, response)
        reached = _int_param(params, self.param, 0) + len(items)
        if len(items) < self.limit or self._complete(body, reached, response):
            return Page(items)
        return Page(items, next_params={**params, self.param: str(reached)})

    def _complete(self, body: Any, reached: int, response: httpx.Response) -> bool:
        if self.total is None:
            return False
        total = _field(body, self.total, response)
        if not isinstance(total, int) or isinstance(total, bool):
            raise broken_page(response, f'"{self.total}" is not a whole number')
        return reached >= total


def parse_link_header(value: str) -> dict[str, str]:
    """Map each relation of an RFC 8288 ``Link`` header to its URL.

    Extra attributes (``title``, ``type``...) are skipped; ``rel="next last"``
    names two relations; the first link of a relation wins.
    """
    links: dict[str, str] = {}

    for url, attributes in _link_values(value):
        for rel in attributes.get("rel", "").split():
            links.setdefault(rel.lower(), url)
    return links


def _link_values(value: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Each ``<url>; name=value; ...`` of a Link header, quoted values unquoted."""
    position = 0

    while (start := value.find("<", position)) != -1:
        end = value.find(">", start)
        if end == -1:
            return
        attributes: dict[str, str] = {}
        position = end + 1
        while match := _LINK_PARAM.match(value, position):
            attributes.setdefault(
                match.group(1).lower(), (match.group(2) or "").strip('"')
            )
            position = match.end()
        yield value[start + 1 : end].strip(), attributes


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body, or ApiResponseError saying what came instead."""
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "text/html":
        raise broken_page(
            response, "it is an HTML page, not JSON (an error page?)", walk=False
        )

    try:
        return response.json()
    except ValueError:
        raise broken_page(response, "its body is not valid JSON", walk=False) from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    body = json_body(response)
    if not isinstance(body, dict):
        raise broken_page(response, "its body is not a JSON object")
    return body


def _items(body: Any, path: str | None, response: httpx.Response) -> list[Any]:
    """The page's list of items, each a JSON object."""
    found = body if path is None else _field(body, path, response)
    where_said = "the body" if path is None else f'"{path}"'
    if not isinstance(found, list):
        raise broken_page(response, f"{where_said} is not a list")
    if not all(isinstance(item, dict) for item in found):
        raise broken_page(response, f"{where_said} holds something other than objects")
    return found


def _field(body: Any, path: str, response: httpx.Response) -> Any:
    """The value at a dotted path, or ApiResponseError naming the missing field."""
    value = _dig(body, path, missing=_MISSING)
    if value is _MISSING:
        raise broken_page(response, f'its envelope has no "{path}" field')
    return value


_MISSING = object()


def _dig(body: Any, path: str, missing: Any = None) -> Any:
    node = body
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return missing
        node = node[part]
    return node


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, str(default))
    return int(text) if text.lstrip("-").isdigit() else default


def broken_page(
    response: httpx.Response, what: str, *, walk: bool = True
) -> ApiResponseError:
    """The error for a page that breaks its style's promise (``what`` says how)."""
    request = response.request
    stopped = (
        "; the walk stopped there rather than end as if the list were complete"
        if walk
        else ""
    )
    return ApiResponseError(
        f"{request.method} {where(request)} answered HTTP {response.status_code} but "
        f"{what}{stopped}.",
        request=request,
        status_code=response.status_code,
        response=response,
    )
