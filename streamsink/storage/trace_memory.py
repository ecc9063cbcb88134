"""Remembered spanId -> traceId per stream, so children in later batches join
their parent's trace (docs/architecture.md, IDs).

Bounded in time (``ttl``) and in entries (``max_entries`` per stream). The
entries live in ``GENERATIONS`` rotating hashes ``ss:traces:{stream_id}:{n}``
(span id -> trace id, both binary: 8 and 16 bytes); the head hash
``ss:traces:{stream_id}`` holds the current generation ``g``, how many entries
it took ``n``, when it started ``t`` and when each generation was last written
``e{n}``. A batch's write is one script call (``scripts.TRACES_REMEMBER``) that
starts a new generation when the current one is full (``max_entries /
GENERATIONS``) or older than ``ttl / (GENERATIONS - 1)``, deleting the one that
falls off the end: the stream never holds more than ``max_entries`` entries,
and an entry stays findable for ``ttl`` unless the cap pushed it out first.
A lookup (``scripts.TRACES_LOOKUP``, one call) reads the generations newest
first and stops at one last written before ``now - ttl``.
The worker queues the write on its per-batch pipeline (``remember(..., pipeline=)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import redis
from redis.client import Pipeline

from streamsink.storage import keys, scripts

#: How many generations a stream keeps (the newest is the one written).
GENERATIONS = 4
#: The old hourly buckets' length (kept for callers that size a window with it).
BUCKET_SECS = 3600
DEFAULT_MAX_ENTRIES = 100_000


class TraceMemory:
    def __init__(
        self, connection: redis.Redis, ttl_secs: int, max_entries: int = DEFAULT_MAX_ENTRIES
    ):
        self.connection = connection
        self.ttl_secs = ttl_secs
        self.max_entries = max_entries
        #: Entries one generation takes before the next starts.
        self.per_generation = max(1, max_entries // GENERATIONS)
        #: The longest a generation is written to (ms).
        self.generation_ms = max(1000, ttl_secs * 1000 // (GENERATIONS - 1))

    def remember(
        self, stream_id: str, span_traces: Mapping[str, str], pipeline: Pipeline | None = None
    ) -> None:
        """Remember span id -> trace id pairs (hex); queued on ``pipeline`` when
        given (the worker's per-batch pipeline: one round trip), else written now."""
        if not span_traces or self.ttl_secs <= 0 or self.max_entries <= 0:
            return
        pairs: list[bytes | str | int] = []
        for span_id, trace_id in list(span_traces.items())[-self.per_generation :]:
            pairs += [bytes.fromhex(span_id), bytes.fromhex(trace_id)]
        args = [
            keys.traces(stream_id, 0)[:-1],  # the generations' key prefix
            int(time.time() * 1000),
            self.generation_ms,
            self.per_generation,
            self.ttl_secs + self.generation_ms // 1000 + 1,
            GENERATIONS,
            *pairs,
        ]
        client = pipeline if pipeline is not None else self.connection
        scripts.TRACES_REMEMBER(client, [keys.traces_head(stream_id)], args)

    def lookup(self, stream_id: str) -> Callable[[str], str | None]:
        """A ``trace_lookup(span_id_hex) -> trace_id_hex | None`` for one stream."""
        head = keys.traces_head(stream_id)
        prefix = keys.traces(stream_id, 0)[:-1]

        def find(span_id: str) -> str | None:
            if self.ttl_secs <= 0 or self.max_entries <= 0:
                return None
            try:
                raw = bytes.fromhex(span_id)
            except ValueError:
                return None
            oldest = int(time.time() * 1000) - self.ttl_secs * 1000
            args = [prefix, raw, oldest, GENERATIONS]
            found = scripts.TRACES_LOOKUP(self.connection, [head], args)
            if not found:
                return None
            return found.decode() if isinstance(found, bytes) else str(found)

        return find

    def entries(self, stream_id: str) -> int:
        """How many span ids the stream remembers now (every generation)."""
        g = self.connection.hget(keys.traces_head(stream_id), "g")
        if g is None:
            return 0
        pipe = self.connection.pipeline(transaction=False)
        for n in range(int(g), max(0, int(g) - GENERATIONS), -1):
            pipe.hlen(keys.traces(stream_id, n))
        return sum(pipe.execute())

    def forget(self, stream_id: str, pipeline: Pipeline | None = None) -> None:
        """Drop what the stream remembers (the stream is deleted)."""
        client = pipeline if pipeline is not None else self.connection
        forget_stream(client, stream_id)


def forget_stream(client: redis.Redis | Pipeline, stream_id: str) -> None:
    """Delete the trace memory of a stream (its head and every generation it
    can still name); ``client`` may be a pipeline in MULTI."""
    scripts.TRACES_FORGET(client, [keys.traces_head(stream_id)], [keys.traces(stream_id, 0)[:-1]])
