"""``delivery.batch``: one batch of one sink, start to end, against a real
receiver on 127.0.0.1 and a real Redis: success moves the cursor, a retryable
answer schedules the next try, a permanent answer or a transform error
disables the sink (cursor kept), a 415 under ``auto`` switches encoding."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis

from streamsink.delivery import scheduling
from streamsink.delivery.batch import deliver_batch
from streamsink.delivery.engine import Engine
from streamsink.delivery.job import read_pending
from streamsink.storage import eventlog
from streamsink.storage import sinks as store_sinks
from streamsink.storage.sinks import SinkRecord
from tests.helpers.receiver_server import Answer, ReceiverServer, Recorded

from ..conftest import Api

THROWS = "function handler(input) { throw new Error('no ' + input.events.length); }"


@pytest.fixture
def receiver() -> Iterator[ReceiverServer]:
    with ReceiverServer() as server:
        yield server


@pytest.fixture
def engine(engine_factory: Callable[..., Engine]) -> Engine:
    return engine_factory(retry_schedule="1s..60s")


def _sink(r: redis.Redis, sink_id: str) -> SinkRecord:
    sink = store_sinks.get_sink(r, sink_id)
    assert sink is not None
    return sink


def _run(engine: Engine, sink_id: str) -> bool:
    sink = _sink(engine.redis, sink_id)
    pending = read_pending(engine.redis, sink)
    assert pending.events, "the test needs pending events"
    return deliver_batch(engine, sink, pending)


def _setup(api: Api, url: str, events: int = 3, **fields: object) -> tuple[str, str, str]:
    """A stream, a sink at ``url`` and ``events`` events; (stream, sink, first cursor)."""
    stream = api.stream()
    sink = api.sink(stream, url, **fields)
    cursor = api.get_sink(stream, sink)["currentIterator"]
    api.post(stream, events)
    return stream, sink, cursor


def test_success_moves_the_cursor(
    api: Api, engine: Engine, receiver: ReceiverServer, redis_client: redis.Redis
) -> None:
    stream, sink, _ = _setup(api, receiver.traces_url, events=5, batchSize=3)
    ids = [e.id for e in eventlog.entries_after(redis_client, stream, "0-0", 10)]

    assert _run(engine, sink) is True
    assert len(receiver.requests) == 1
    assert len(receiver.spans()) == 3
    after = api.get_sink(stream, sink)
    assert after["currentIterator"] == ids[2]  # batchSize events, no more
    assert after["status"] == "enabled" and after["failureReason"] is None
    (attempt,) = api.attempts(stream, sink)
    assert attempt["outcome"] == "success" and attempt["statusCode"] == 200
    assert (attempt["firstEventId"], attempt["lastEventId"]) == (ids[0], ids[2])
    assert attempt["spansSent"] == 3

    assert _run(engine, sink) is True  # the rest, in order
    assert api.get_sink(stream, sink)["currentIterator"] == ids[4]
    assert len(receiver.spans()) == 5


def test_a_cursor_moved_meanwhile_is_not_overwritten(
    api: Api, engine: Engine, receiver: ReceiverServer, redis_client: redis.Redis
) -> None:
    stream, sink_id, _ = _setup(api, receiver.traces_url, events=4)
    sink = _sink(redis_client, sink_id)
    pending = read_pending(redis_client, sink)
    last = eventlog.last_id(redis_client, stream)
    api.call("POST", f"/stream/{stream}/sink/{sink_id}/skip", 202, json={"iterator": last})
    assert deliver_batch(engine, sink, pending) is False  # compare-and-set refused
    assert api.get_sink(stream, sink_id)["currentIterator"] == last


def test_a_retryable_answer_schedules_the_next_try(
    api: Api, engine: Engine, receiver: ReceiverServer, redis_client: redis.Redis
) -> None:
    receiver.push(503)
    stream, sink, cursor = _setup(api, receiver.traces_url)
    before = scheduling.now_ms()

    assert _run(engine, sink) is False
    after = api.get_sink(stream, sink)
    assert after["status"] == "retrying"
    assert after["currentIterator"] == cursor  # nothing passed
    assert "503" in after["failureReason"]
    due = scheduling.waiting_until(redis_client, sink)
    assert due is not None and before + 500 <= due <= scheduling.now_ms() + 2000  # ~1 s +-20 %
    assert after["nextRetryAt"] is not None
    (attempt,) = api.attempts(stream, sink)
    assert attempt["outcome"] == "retrying" and attempt["statusCode"] == 503
    # The wake-up is a scheduled job on the slow queue (a failing sink waits
    # behind healthy ones).
    slow = scheduling.delivery_queue(redis_client, slow=True)
    assert any(j.endswith(f"{sink}-{due}") for j in slow.scheduled_job_registry.get_job_ids())

    # The next try succeeds: enabled again, cursor moved, retry state gone.
    assert _run(engine, sink) is True
    again = api.get_sink(stream, sink)
    assert again["status"] == "enabled" and again["failureReason"] is None
    assert again["nextRetryAt"] is None
    assert again["currentIterator"] == eventlog.last_id(redis_client, stream)
    assert not redis_client.exists(store_sinks.retry_state_key(sink))


def test_retry_after_is_the_wait(
    api: Api, engine: Engine, receiver: ReceiverServer, redis_client: redis.Redis
) -> None:
    receiver.push(Answer(429, headers={"Retry-After": "30"}))
    stream, sink, _ = _setup(api, receiver.traces_url)
    before = scheduling.now_ms()
    assert _run(engine, sink) is False
    due = scheduling.waiting_until(redis_client, sink)
    assert due is not None and before + 29_000 <= due <= scheduling.now_ms() + 31_000
    assert "Retry-After: 30s" in api.get_sink(stream, sink)["failureReason"]


def test_a_permanent_answer_disables_the_sink(
    api: Api, engine: Engine, redis_client: redis.Redis
) -> None:
    bad = Answer(400, "span 0: bad attribute", content_type="text/plain")
    with ReceiverServer(default=bad) as receiver:
        stream, sink, cursor = _setup(api, receiver.traces_url)
        assert _run(engine, sink) is False
        assert len(receiver.requests) == 1  # not retried
    after = api.get_sink(stream, sink)
    assert after["status"] == "disabled"
    assert "HTTP 400" in after["failureReason"] and "bad attribute" in after["failureReason"]
    assert after["currentIterator"] == cursor and after["nextRetryAt"] is None
    assert scheduling.waiting_until(redis_client, sink) is None
    (attempt,) = api.attempts(stream, sink)
    assert attempt["outcome"] == "failed" and attempt["statusCode"] == 400


def test_a_transform_error_disables_the_sink_without_sending(
    api: Api, engine: Engine, receiver: ReceiverServer
) -> None:
    stream, sink, cursor = _setup(api, receiver.traces_url, code=THROWS)
    assert _run(engine, sink) is False
    assert receiver.requests == []
    after = api.get_sink(stream, sink)
    assert after["status"] == "disabled"
    assert after["failureReason"].startswith("transformation failed on events")
    assert "no 3" in after["failureReason"]
    assert after["currentIterator"] == cursor
    (attempt,) = api.attempts(stream, sink)
    assert attempt["outcome"] == "failed" and attempt["spansSent"] == 0


def test_a_415_under_auto_switches_encoding_and_remembers_it(
    api: Api, engine: Engine, redis_client: redis.Redis
) -> None:
    def protobuf_only(recorded: Recorded) -> Answer:
        ok = recorded.headers.get("content-type") == "application/x-protobuf"
        return Answer(200 if ok else 415)

    with ReceiverServer(handler=protobuf_only) as receiver:
        stream, sink, _ = _setup(api, receiver.traces_url)
        assert _run(engine, sink) is True
        types = [r.headers["content-type"] for r in receiver.requests]
    assert types == ["application/json", "application/x-protobuf"]
    after = api.get_sink(stream, sink)
    assert after["negotiatedEncoding"] == "protobuf"
    assert after["currentIterator"] == eventlog.last_id(redis_client, stream)
    outcomes = [a["outcome"] for a in api.attempts(stream, sink)]
    assert outcomes == ["success", "switched"]
