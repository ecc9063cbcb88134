"""The one depth rule of handler results: every value lies at most
``MAX_DEPTH`` keys or indexes below the result. V8 enforces it (``prelude.js``)
before the result leaves it, for the worker, simulate and the CLI alike;
``too_deep`` is the same rule in Python (an iterative walk, no recursion), for
simulate's answer and to turn a ``RecursionError`` into an ``OutputError``."""

from __future__ import annotations

from typing import Any

#: Python's default recursion limit is 1000 frames; attribute flattening and
#: the encoders recurse once per level, so results nest at most this deep.
MAX_DEPTH = 200


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """The path (``spans[0].attributes.a.b``, shortened) of a value lying more
    than ``limit`` levels below ``value``, or None."""
    stack: list[tuple[Any, list[str]]] = [(value, [])]
    steps = 0
    while stack and steps < 10_000_000:
        node, path = stack.pop()
        steps += 1
        if len(path) > limit:
            return _show(path)
        if isinstance(node, dict):
            stack.extend((v, [*path, f".{k}"]) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, [*path, f"[{j}]"]) for j, v in enumerate(node))
    return None


def _show(path: list[str]) -> str:
    head = "".join(path[:4]).lstrip(".")
    return head + "..." if len(path) > 4 else head
