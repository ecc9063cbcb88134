"""A worker whose outcome write Redis refuses for memory (``maxmemory``,
noeviction) loses nothing: the cursor stays where the batch was read, the job
ends without raising, and the next run sends the batch again (at least once)."""

from __future__ import annotations

from collections.abc import Callable

import redis

from streamsink.delivery.engine import Engine
from streamsink.delivery.job import process_sink
from streamsink.storage import eventlog
from streamsink.storage import sinks as store_sinks
from tests.helpers.receiver_server import Answer, ReceiverServer, Recorded

from ..conftest import Api


def test_oom_on_the_outcome_pipeline_keeps_the_batch(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    limit = redis_client.config_get("maxmemory")["maxmemory"]

    def fill_up_then_answer(_: Recorded) -> Answer:
        if len(server.requests) == 1:  # Redis is full when the outcome is written
            redis_client.config_set("maxmemory", 1)
        return Answer(200)

    server = ReceiverServer(handler=fill_up_then_answer).start()
    try:
        engine = engine_factory()
        stream = api.stream()
        sink = api.sink(stream, server.traces_url)
        start = api.get_sink(stream, sink)["currentIterator"]
        api.post(stream, 3)
        try:
            process_sink(engine, stream, sink)  # must not raise
            record = store_sinks.get_sink(redis_client, sink)
            assert record is not None and record.cursor == start  # nothing acked is skipped
        finally:
            redis_client.config_set("maxmemory", limit)
        process_sink(engine, stream, sink)
        assert len(server.requests) == 2  # sent again
        record = store_sinks.get_sink(redis_client, sink)
        assert record is not None
        assert record.cursor == eventlog.last_id(redis_client, stream)
        assert record.status == "enabled"
    finally:
        server.stop()
