"""List pagination: ``limit`` (1..250), opaque ``iterator``, ``order``, and the
``{data, iterator, prevIterator, done}`` answer.

An iterator is base64url text of ``n:<key>`` (continue after ``key``) or
``p:<key>`` (the page before ``key``), where key is the sort key of a listed item:
a creation sequence number (streams, sinks) or a name (event types).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Query

from streamsink.api.errors import validation_error
from streamsink.resource_ids import validate_name
from streamsink.storage.base import Page, Window

Order = Literal["ascending", "descending"]


@dataclass
class ListParams:
    limit: int
    iterator: str | None
    order: Order


def list_params(
    limit: Annotated[
        int, Query(ge=1, le=250, description="Limit the number of returned items")
    ] = 50,
    iterator: Annotated[
        str | None,
        Query(max_length=1024, description="The iterator returned from a prior invocation"),
    ] = None,
    order: Annotated[Order, Query(description="The sorting order of the returned items")] = (
        "ascending"
    ),
) -> ListParams:
    return ListParams(limit=limit, iterator=iterator or None, order=order)


def encode_iterator(direction: Literal["n", "p"], key: str) -> str:
    return base64.urlsafe_b64encode(f"{direction}:{key}".encode()).decode().rstrip("=")


def _bad_iterator() -> Exception:
    return validation_error(("query", "iterator"), "Invalid iterator", "value_error")


def window_for(params: ListParams, *, numeric: bool) -> Window:
    """The store window a request asks for (422 on a malformed iterator)."""
    window = Window(limit=params.limit, descending=params.order == "descending")
    if params.iterator is None:
        return window
    try:
        text = params.iterator
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _bad_iterator() from None
    direction, sep, key = raw.partition(":")
    if not sep or direction not in ("n", "p"):
        raise _bad_iterator()
    if numeric and not (key.isdigit() and len(key) < 20):
        raise _bad_iterator()
    if not numeric:
        try:
            validate_name(key)
        except ValueError:
            raise _bad_iterator() from None
    window.after = key
    window.backwards = direction == "p"
    return window


def list_response(page: Page, params: ListParams, render: Callable[[Any], Any]) -> dict[str, Any]:
    """``{data, iterator, prevIterator, done}`` for a page (items in display order).

    ``iterator`` continues after the last item (on an empty page it is the one
    given, so a caller can poll); ``prevIterator`` leads to the page before the
    first item; ``done`` says nothing more lies in the direction travelled."""
    keys = [key for key, _ in page.items]
    data = [render(record) for _, record in page.items]
    if keys:
        iterator: str | None = encode_iterator("n", keys[-1])
        prev: str | None = encode_iterator("p", keys[0])
    else:
        iterator, prev = params.iterator, None
    return {"data": data, "iterator": iterator, "prevIterator": prev, "done": not page.more}
