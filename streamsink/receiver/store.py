"""The local OTLP receiver's storage: the last traces in Redis, bounded in
traces, spans and bytes (``receiver`` decodes, ``api/local.py`` serves).

One Lua call per request, atomic: a sorted set of trace ids scored by
last-seen time in ms, one hash per trace (span id -> span JSON, so a
re-delivered span overwrites itself), and counters of spans and bytes (span
JSON, in total and per trace). Oldest traces are dropped while there are more
than ``max_traces`` traces, ``max_spans`` spans or ``max_bytes`` bytes; a trace
keeps at most ``max_spans`` spans and ``max_bytes`` bytes (further spans are
rejected, and counted).
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import orjson
import redis

from streamsink.storage import keys, scripts

DEFAULT_MAX_TRACES = 1000
DEFAULT_MAX_SPANS = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
KEY_PREFIX = keys.LOCAL_KEY_PREFIX

Span_ = dict[str, Any]


class AddResult(NamedTuple):
    added: int  # new spans stored (a re-sent span overwrites itself: not new)
    dropped: int  # oldest traces dropped to stay within the bounds
    rejected: int  # spans not stored: their trace is at max_spans or max_bytes


class StoredTrace(NamedTuple):
    trace_id: str
    last_seen_ms: int
    spans: list[Span_]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TraceStore:
    """The received traces, bounded, in Redis (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = KEY_PREFIX,
        max_traces: int = DEFAULT_MAX_TRACES,
        max_spans: int = DEFAULT_MAX_SPANS,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.redis = client
        local = keys.local(prefix)
        self.index_key = local.traces
        self.count_key = local.span_count
        self.bytes_key = local.byte_count
        self.sizes_key = local.trace_bytes
        self.trace_prefix = local.trace_prefix
        self.max_traces = max_traces
        self.max_spans = max_spans
        self.max_bytes = max_bytes

    @property
    def _keys(self) -> list[str]:
        return [self.index_key, self.count_key, self.bytes_key, self.sizes_key]

    def add(self, spans: list[Span_], now_ms: int | None = None) -> AddResult:
        """Store ``spans`` (see ``AddResult``)."""
        if not spans:
            return AddResult(0, 0, 0)
        args: list[Any] = [
            self.trace_prefix,
            now_ms if now_ms is not None else int(time.time() * 1000),
            self.max_traces,
            self.max_spans,
            self.max_bytes,
        ]
        for span in spans:
            args += [span["traceId"], span["spanId"], orjson.dumps(span)]
        added, dropped, rejected = scripts.LOCAL_ADD(self.redis, self._keys, args)
        return AddResult(int(added), int(dropped), int(rejected))

    def span_count(self) -> int:
        return int(self.redis.get(self.count_key) or 0)

    def byte_count(self) -> int:
        """Bytes of span JSON stored (what ``max_bytes`` bounds)."""
        return int(self.redis.get(self.bytes_key) or 0)

    def trace_count(self) -> int:
        return int(self.redis.zcard(self.index_key))

    def list(self, limit: int = 50) -> list[StoredTrace]:
        """The ``limit`` most recently seen traces, newest first."""
        entries = self.redis.zrevrange(self.index_key, 0, max(limit, 1) - 1, withscores=True)
        return self._load([(_text(tid), int(score)) for tid, score in entries])

    def get(self, trace_id: str) -> StoredTrace | None:
        score = self.redis.zscore(self.index_key, trace_id)
        if score is None:
            return None
        found = self._load([(trace_id, int(score))])
        return found[0] if found else None

    def clear(self) -> int:
        """Delete every stored trace; returns how many there were."""
        return int(scripts.LOCAL_CLEAR(self.redis, self._keys, [self.trace_prefix]))

    def _load(self, entries: list[tuple[str, int]]) -> list[StoredTrace]:
        pipe = self.redis.pipeline(transaction=False)
        for tid, _ in entries:
            pipe.hvals(self.trace_prefix + tid)
        traces = []
        for (tid, seen), values in zip(entries, pipe.execute(), strict=True):
            spans = [orjson.loads(v) for v in values]
            if spans:  # trimmed between the two reads: skip
                traces.append(StoredTrace(tid, seen, spans))
        return traces
