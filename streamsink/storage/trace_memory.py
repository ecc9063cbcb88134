"""Remembered spanId -> traceId per stream, so children in later batches join
their parent's trace (DESIGN section 5).

Entries live in hourly hash buckets ``ss:traces:{stream_id}:{hour}`` that expire
after ``ttl`` (+1 h); one HSET per batch writes them, a lookup reads the buckets
that can still hold an entry younger than ``ttl``.
The worker queues the write on its per-batch pipeline (``remember(..., pipeline=)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import redis
from redis.client import Pipeline

from streamsink.storage import keys

BUCKET_SECS = 3600


class TraceMemory:
    def __init__(self, connection: redis.Redis, ttl_secs: int):
        self.connection = connection
        self.ttl_secs = ttl_secs

    def _buckets(self, now: float) -> list[int]:
        current = int(now) // BUCKET_SECS
        oldest = int(now - self.ttl_secs) // BUCKET_SECS
        return list(range(current, oldest - 1, -1))

    def remember(
        self, stream_id: str, span_traces: Mapping[str, str], pipeline: Pipeline | None = None
    ) -> None:
        """Remember span id -> trace id pairs; queued on ``pipeline`` when given
        (the worker's per-batch pipeline: one round trip), else written now."""
        if not span_traces or self.ttl_secs <= 0:
            return
        pipe = pipeline if pipeline is not None else self.connection.pipeline(transaction=False)
        key = keys.traces(stream_id, int(time.time()) // BUCKET_SECS)
        pipe.hset(key, mapping=dict(span_traces))
        pipe.expire(key, self.ttl_secs + BUCKET_SECS)
        if pipeline is None:
            pipe.execute()

    def lookup(self, stream_id: str) -> Callable[[str], str | None]:
        """A ``trace_lookup(span_id_hex) -> trace_id_hex | None`` for one stream."""

        def find(span_id: str) -> str | None:
            if self.ttl_secs <= 0:
                return None
            pipe = self.connection.pipeline(transaction=False)
            for bucket in self._buckets(time.time()):
                pipe.hget(keys.traces(stream_id, bucket), span_id)
            for found in pipe.execute():
                if found:
                    return found.decode() if isinstance(found, bytes) else str(found)
            return None

        return find
