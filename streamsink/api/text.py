"""Text checks of the pure core: where a value holds a lone UTF-16 surrogate.

JSON text may escape one (``"\\udfff"``) and Python's parser keeps it in a
``str``, but such a string is not Unicode text: UTF-8 encoders (orjson, Redis
clients) refuse it. Values are checked at the edge so that it is a clear 422.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from pydantic import BaseModel

__all__ = ["has_surrogate", "surrogate_error"]


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (it cannot be encoded as UTF-8)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _first_surrogate(text: str) -> str:
    return next(ascii(c)[1:-1] for c in text if "\ud800" <= c <= "\udfff")


def _key(key: Any) -> str:
    return f"[{json.dumps(key)}]" if isinstance(key, str) else f"[{key!r}]"


def surrogate_error(value: Any) -> str | None:
    """A message naming where ``value`` (text, or objects and arrays of it, at any
    depth) holds a lone surrogate, e.g. ``["a"][0]``; None when it holds none.
    Models inside are skipped: they check their own fields."""
    if isinstance(value, str):
        if has_surrogate(value):
            return f"lone surrogate {_first_surrogate(value)} is not valid Unicode text"
        return None
    if not isinstance(value, dict | list | tuple):
        return None
    try:  # the usual case, in C: orjson refuses surrogates (and models, and depth > 255)
        orjson.dumps(value)
        return None
    except (orjson.JSONEncodeError, TypeError):
        pass
    stack: list[tuple[tuple[str, ...], Any]] = [((), value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                where = "".join(path)
                return (
                    f"lone surrogate {_first_surrogate(item)} at {where} is not valid Unicode text"
                )
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                if isinstance(key, str) and has_surrogate(key):
                    where = "".join(path) or "the top level"
                    return (
                        f"a key at {where} holds lone surrogate {_first_surrogate(key)}:"
                        " not valid Unicode text"
                    )
                stack.append(((*path, _key(key)), child))
        elif isinstance(item, list | tuple):
            stack.extend(((*path, f"[{i}]"), child) for i, child in reversed(list(enumerate(item))))
        elif isinstance(item, BaseModel):
            continue
    return None
