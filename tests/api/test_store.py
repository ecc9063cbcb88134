"""The store functions the delivery engine uses."""

from __future__ import annotations

import redis

from streamsink.storage import eventlog as event_log
from streamsink.storage import sink_edits as store_sink_edits
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams


def _sink(client: redis.Redis, stream_id: str, **values: object) -> store_sinks.SinkRecord:
    base = {"type": "otelTracing", "url": "https://c.example.com/v1/traces", **values}
    return store_sink_edits.create_sink(client, stream_id, base)


def test_engine_reads_and_state_updates(redis_client: redis.Redis) -> None:
    stream = store_streams.create_stream(redis_client, name="s", uid=None, metadata=None)
    ids = event_log.append(redis_client, stream.id, [("a", "1"), ("b", "2")])
    a = _sink(redis_client, stream.id, event_types=["a"], headers={"X-K": "v"})
    b = _sink(redis_client, stream.id, batch_size=3)
    assert a.cursor == ids[-1]
    listed = store_sinks.list_stream_sinks(redis_client, stream.id)
    assert [s.id for s in listed] == [a.id, b.id]
    assert listed[0].matches("a") and not listed[0].matches("b") and listed[1].matches("z")
    store_sink_edits.set_sink_code(redis_client, stream.id, a.id, "function handler(i){}")
    got = store_sinks.get_sink(redis_client, a.id)
    assert got is not None and got.code == "function handler(i){}"
    assert got.headers == {"X-K": "v"} and got.stream_id == stream.id

    assert store_sinks.update_sink_state(
        redis_client, a.id, status="retrying", next_retry_at=123456, failure_reason="503"
    )
    got = store_sinks.get_sink(redis_client, a.id)
    assert got is not None and (got.status, got.next_retry_at, got.failure_reason) == (
        "retrying",
        123456,
        "503",
    )
    assert store_sinks.update_sink_state(
        redis_client, a.id, status="enabled", next_retry_at=None, failure_reason=None
    )
    got = store_sinks.get_sink(redis_client, a.id)
    assert got is not None and got.next_retry_at is None and got.failure_reason is None
    # compare-and-set on the cursor
    assert not store_sinks.update_sink_state(redis_client, a.id, cursor="9-9", if_cursor="1-1")
    assert store_sinks.update_sink_state(redis_client, a.id, cursor="9-9", if_cursor=ids[-1])
    got = store_sinks.get_sink(redis_client, a.id)
    assert got is not None and got.cursor == "9-9"


def test_update_of_a_deleted_sink_does_not_resurrect_it(redis_client: redis.Redis) -> None:
    stream = store_streams.create_stream(redis_client, name="s", uid="s", metadata=None)
    sink = _sink(redis_client, stream.id)
    store_sink_edits.delete_sink(redis_client, stream.id, sink.id)
    assert not store_sinks.update_sink_state(redis_client, sink.id, cursor="1-0")
    assert not redis_client.exists(f"ss:sink:{sink.id}")
    assert store_sinks.get_sink(redis_client, sink.id) is None


def test_api_edits_do_not_clobber_engine_fields(redis_client: redis.Redis) -> None:
    stream = store_streams.create_stream(redis_client, name="s", uid=None, metadata=None)
    sink = _sink(redis_client, stream.id)
    store_sinks.update_sink_state(redis_client, sink.id, cursor="7-0", status="retrying")
    store_sink_edits.patch_sink(redis_client, stream.id, sink.id, {"batch_size": 5})
    got = store_sinks.get_sink(redis_client, sink.id)
    assert got is not None and (got.cursor, got.status, got.batch_size) == ("7-0", "retrying", 5)


def test_works_with_decode_responses(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    stream = store_streams.create_stream(client, name="s", uid="dec", metadata={"a": "b"})
    assert store_streams.get_stream(client, "dec") == stream
    sink = _sink(client, stream.id)
    assert store_sinks.get_sink(client, sink.id) is not None
    assert event_log.append(client, stream.id, [("a", "1")])
    assert event_log.read_after(client, stream.id, "0-0", 5)[0][1:] == ("a", "1")
    client.close()
