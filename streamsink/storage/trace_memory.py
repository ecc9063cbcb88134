"""Remembered spanId -> traceId per stream, so children in later batches join
their parent's trace (docs/architecture.md, IDs).

Bounded in time (``ttl``) and in entries (``max_entries`` per stream). The
entries live in ``GENERATIONS`` hashes ``ss:traces:{stream_id}:{0..3}``, newest
first (field: the span id's 8 bytes; value: the trace id in hex); the head hash
``ss:traces:{stream_id}`` holds when the newest started ``t``, how many entries
it took ``n`` and when each generation was last written ``e0..e3``. A batch's
write is three commands on the worker's per-batch pipeline: a small script
(``scripts.TRACES_ROTATE``) that moves every generation one place down (the
oldest dropped) when the newest would pass ``max_entries / GENERATIONS`` or is
older than ``ttl / (GENERATIONS - 1)``, then a native HSET into the newest and
its EXPIRE. So a stream never holds more than ``max_entries`` entries, and an
entry stays findable for ``ttl`` unless the cap pushed it out first (the
newest three generations, each filled to within one batch of its share, are
always there). A lookup is one round trip: the head's times and one HGET per
generation, the newest hit last written within ``ttl`` wins.
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
_TIMES = [f"e{n}" for n in range(GENERATIONS)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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

    def _keys(self, stream_id: str) -> list[str]:
        return [keys.traces_head(stream_id)] + [
            keys.traces(stream_id, n) for n in range(GENERATIONS)
        ]

    def remember(
        self, stream_id: str, span_traces: Mapping[str, str], pipeline: Pipeline | None = None
    ) -> None:
        """Remember span id -> trace id pairs (hex); queued on ``pipeline`` when
        given (the worker's per-batch pipeline: one round trip), else written now."""
        if not span_traces or self.ttl_secs <= 0 or self.max_entries <= 0:
            return
        items = list(span_traces.items())[-self.per_generation :]
        mapping = {bytes.fromhex(span_id): trace_id for span_id, trace_id in items}
        ttl = self.ttl_secs + self.generation_ms // 1000 + 1
        all_keys = self._keys(stream_id)
        args = [int(time.time() * 1000), self.generation_ms, self.per_generation, len(mapping), ttl]
        pipe = pipeline if pipeline is not None else self.connection.pipeline(transaction=False)
        scripts.TRACES_ROTATE(pipe, all_keys, args)
        pipe.hset(all_keys[1], mapping=mapping)  # type: ignore[arg-type]
        pipe.expire(all_keys[1], ttl)
        if pipeline is None:
            pipe.execute()

    def lookup(self, stream_id: str) -> Callable[[str], str | None]:
        """A ``trace_lookup(span_id_hex) -> trace_id_hex | None`` for one stream."""
        head, *generations = self._keys(stream_id)

        def find(span_id: str) -> str | None:
            if self.ttl_secs <= 0 or self.max_entries <= 0:
                return None
            try:
                field = bytes.fromhex(span_id)
            except ValueError:
                return None
            pipe = self.connection.pipeline(transaction=False)
            pipe.hmget(head, _TIMES)
            for key in generations:
                pipe.hget(key, field)
            written, *found = pipe.execute()
            oldest = int(time.time() * 1000) - self.ttl_secs * 1000
            for when, value in zip(written, found, strict=True):
                if when is None or int(when) < oldest:
                    return None  # this generation and older ones are out of the window
                if value is not None:
                    return _text(value)
            return None

        return find

    def entries(self, stream_id: str) -> int:
        """How many span ids the stream remembers now (every generation)."""
        pipe = self.connection.pipeline(transaction=False)
        for key in self._keys(stream_id)[1:]:
            pipe.hlen(key)
        return sum(pipe.execute())

    def forget(self, stream_id: str, pipeline: Pipeline | None = None) -> None:
        """Drop what the stream remembers (the stream is deleted)."""
        forget_stream(pipeline if pipeline is not None else self.connection, stream_id)


def forget_stream(client: redis.Redis | Pipeline, stream_id: str) -> None:
    """Delete the trace memory of a stream; ``client`` may be a pipeline in MULTI."""
    client.unlink(
        keys.traces_head(stream_id), *(keys.traces(stream_id, n) for n in range(GENERATIONS))
    )
