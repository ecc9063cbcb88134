"""The idle phase's fast sink creation writes what the API's create writes:
the same hash fields and values (less ids, times and sequence numbers), the
same indexes, and the storage layer reads them back as ordinary sinks."""

from __future__ import annotations

import argparse
from types import SimpleNamespace

import redis

from streamsink.storage import keys, sink_edits, sinks, streams
from tools.bench.scale import IDLE_PATH, create_idle_sinks

RX = "http://127.0.0.1:9"
VARYING = {"id", "streamId", "createdAt", "updatedAt", "seq"}


def test_idle_sinks_are_written_as_the_api_writes_them(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stack = SimpleNamespace(redis_client=lambda: redis.Redis.from_url(redis_url))
    bench = SimpleNamespace(stack=stack, rx=RX, args=argparse.Namespace(batch_size=100))
    assert create_idle_sinks(bench, 7, 3, chunk=2) == 7  # type: ignore[arg-type]

    made = client.zrange(keys.STREAMS, 0, -1)
    assert len(made) == 3
    per_stream = [client.zrange(keys.stream_sinks(s), 0, -1) for s in made]
    assert sorted(len(x) for x in per_stream) == [1, 3, 3]
    seqs = [int(client.hget(keys.sink(x), "seq")) for ids in per_stream for x in ids]
    assert len(set(seqs)) == 7  # distinct, from the shared counter

    ref = streams.create_stream(client, name="ref", uid=None, metadata=None)
    values = {"type": "otelTracing", "url": RX + IDLE_PATH, "batch_size": 100}
    api_sink = sink_edits.create_sink(client, ref.id, values)
    want = client.hgetall(keys.sink(api_sink.id))
    got = client.hgetall(keys.sink(per_stream[0][0]))
    assert {k: v for k, v in got.items() if k not in VARYING} == {
        k: v for k, v in want.items() if k not in VARYING
    }
    assert set(client.hgetall(keys.stream(made[0]))) == set(client.hgetall(keys.stream(ref.id)))
    record = sinks.list_stream_sinks(client, made[0])[0]
    assert record.status == "enabled" and record.url == RX + IDLE_PATH
