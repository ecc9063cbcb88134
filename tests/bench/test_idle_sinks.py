"""The idle phase's fast sink creation writes what the API's create writes:
the same keys (records, indexes, the status counts the sinks gauge reads, any
due or trim set), the same hash fields and values (less ids, times and
sequence numbers), and the storage layer reads them back as ordinary sinks."""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any

import redis

from streamsink.storage import keys, sink_edits, sinks, streams
from tools.bench.scale import IDLE_PATH, create_idle_sinks

RX = "http://127.0.0.1:9"
VARYING = {"id", "streamId", "createdAt", "updatedAt", "seq"}


def _bench(redis_url: str) -> Any:
    stack = SimpleNamespace(redis_client=lambda: redis.Redis.from_url(redis_url))
    return SimpleNamespace(stack=stack, rx=RX, args=argparse.Namespace(batch_size=100))


def _snapshot(client: redis.Redis) -> dict[str, Any]:
    """Every key and its content, the one stream's and sink's ids replaced by
    placeholders and the fields that vary per record left out."""
    (stream_id,) = client.zrange(keys.STREAMS, 0, -1)
    (sink_id,) = client.zrange(keys.stream_sinks(stream_id), 0, -1)

    def norm(text: str) -> str:
        return text.replace(stream_id, "<stream>").replace(sink_id, "<sink>")

    out: dict[str, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "hash":
            value: Any = {k: norm(v) for k, v in client.hgetall(key).items() if k not in VARYING}
        elif kind == "zset":
            value = sorted(norm(m) for m in client.zrange(key, 0, -1))
        elif kind == "set":
            value = sorted(norm(m) for m in client.smembers(key))
        elif kind == "string":
            value = norm(client.get(key))
        else:
            value = kind
        out[norm(key)] = (kind, value)
    return out


def test_idle_sink_writes_the_same_keys_as_the_api_create(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    ref = streams.create_stream(client, name="bench-idle-0", uid=None, metadata=None)
    values = {"type": "otelTracing", "url": RX + IDLE_PATH, "batch_size": 100}
    sink_edits.create_sink(client, ref.id, values)
    want = _snapshot(client)
    client.flushdb()
    assert create_idle_sinks(_bench(redis_url), 1, 1) == 1
    got = _snapshot(client)
    assert got == want
    assert want[keys.SINK_STATUS_COUNTS] == ("hash", {"enabled": "1"})


def test_idle_sinks_are_written_as_the_api_writes_them(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    assert create_idle_sinks(_bench(redis_url), 7, 3, chunk=2) == 7

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
    # the status counts hold every sink, the bench's seven and the API's one
    assert client.hgetall(keys.SINK_STATUS_COUNTS) == {"enabled": "8"}
    record = sinks.list_stream_sinks(client, made[0])[0]
    assert record.status == "enabled" and record.url == RX + IDLE_PATH
