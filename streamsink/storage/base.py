"""Shared data-access helpers. Streams live in ``store_streams``,
event types in ``store_event_types``, sinks in ``store_sinks`` (record, reads,
engine state updates) and ``store_sink_edits`` (API writes), the event log in
``streamsink.storage.eventlog``.

Every Redis key is defined, and tabled, in ``streamsink.storage.keys``; every
Lua script in ``streamsink.storage.scripts``.

Times are epoch milliseconds. Every multi-key write runs in one MULTI/EXEC, under
WATCH where it depends on what it read, so a failed request never leaves a partial
write. Functions take a redis-py client with or without ``decode_responses``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
import redis
from redis.client import Pipeline

from streamsink.errors import Conflict
from streamsink.storage import keys

# The old names of ``keys.*``, for callers outside storage/ (storage uses ``keys``).
SEQ_KEY, STREAMS_KEY, EVENT_TYPES_KEY = keys.SEQ, keys.STREAMS, keys.EVENT_TYPES
stream_key, stream_uid_key, stream_sinks_key = keys.stream, keys.stream_uid, keys.stream_sinks
sink_key, sink_uid_key, event_type_key = keys.sink, keys.sink_uid, keys.event_type

T = TypeVar("T")
R = TypeVar("R")


# --- small helpers ---------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def to_str(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_hash(raw: dict[Any, Any]) -> dict[str, str]:
    return {to_str(k) or "": to_str(v) or "" for k, v in raw.items()}


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def loads(text: str | None, default: Any) -> Any:
    return orjson.loads(text) if text else default


def transaction(client: redis.Redis, func: Callable[[Pipeline], R], *watch: str) -> R:
    """Run ``func`` under WATCH ``watch`` (re-run on a concurrent change); its result.

    ``func`` reads in immediate mode (so ``watch`` must not be empty), then calls
    ``pipe.multi()`` and queues its writes."""
    assert watch, "a transaction needs at least one watched key"
    return client.transaction(func, *watch, value_from_callable=True)


# --- list windows ---------------------------------------------------------------


@dataclass
class Window:
    """One page request over an ordered index.

    ``after`` is the sort key (seq or name) strictly after which to start, in the
    direction of travel; ``backwards`` travels against ``descending`` (a
    ``prevIterator`` page). Items come back in display order either way.
    """

    limit: int = 50
    descending: bool = False
    after: str | None = None
    backwards: bool = False


@dataclass
class Page:
    items: list[tuple[str, Any]] = field(default_factory=list)  # (sort key, record)
    more: bool = False


def scan_index(
    client: redis.Redis,
    key: str,
    window: Window,
    load: Callable[[Sequence[str]], list[T | None]],
    *,
    lex: bool = False,
) -> Page:
    """Walk a ZSET index (by score, or by member name when ``lex``) from ``window``,
    loading records in chunks and skipping ``None`` (missing or filtered out)."""
    reverse = window.descending != window.backwards
    bound = window.after
    found: list[tuple[str, Any]] = []
    chunk = window.limit + 1
    while len(found) <= window.limit:
        members = _range(client, key, bound, reverse, chunk, lex)
        if not members:
            break
        records = load([m for m, _ in members])
        for (_member, sort_key), record in zip(members, records, strict=True):
            if record is not None:
                found.append((sort_key, record))
        bound = members[-1][1]
        if len(members) < chunk:
            break
        chunk = min(chunk * 2, 1000)
    more = len(found) > window.limit
    found = found[: window.limit]
    if window.backwards:
        found.reverse()
    return Page(items=found, more=more)


def _range(
    client: redis.Redis, key: str, bound: str | None, reverse: bool, count: int, lex: bool
) -> list[tuple[str, str]]:
    """Up to ``count`` (member, sort key) pairs strictly beyond ``bound``."""
    if lex:
        lo = f"({bound}" if bound is not None else "-"
        hi = f"({bound}" if bound is not None else "+"
        if reverse:
            raw = client.zrevrangebylex(key, hi, "-", start=0, num=count)
        else:
            raw = client.zrangebylex(key, lo, "+", start=0, num=count)
        return [(to_str(m) or "", to_str(m) or "") for m in raw]
    if reverse:
        hi = f"({bound}" if bound is not None else "+inf"
        pairs = client.zrevrangebyscore(key, hi, "-inf", start=0, num=count, withscores=True)
    else:
        lo = f"({bound}" if bound is not None else "-inf"
        pairs = client.zrangebyscore(key, lo, "+inf", start=0, num=count, withscores=True)
    return [(to_str(m) or "", str(int(s))) for m, s in pairs]


def check_uid_free(pipe: Pipeline, uid_key: str, uid: str, owner: str | None) -> None:
    """Raise Conflict when ``uid_key`` already maps to a resource other than ``owner``."""
    current = to_str(pipe.get(uid_key))
    if current is not None and current != owner:
        raise Conflict(f"uid {uid!r} is already in use")
