"""A ``poller`` sink beside a delivered one, with a real ``streamsink worker``
running: the worker delivers the ``otelTracing`` sink and never touches the
poller (no request, no attempt, no retry, no disable, cursor untouched), and
the poller's consumer reads every event with its iterator; ``last-acked-event``
and ``next-event`` follow each sink's cursor."""

from __future__ import annotations

from typing import Any

import redis

from streamsink.delivery import job as delivery
from streamsink.delivery import reaper
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from streamsink.storage import sinks as store_sinks

from .conftest import Api, Receiver, Workers, wait_until


def _events(api: Api, stream: str, sink: str, **params: Any) -> dict[str, Any]:
    return api.call("GET", f"/stream/{stream}/sink/{sink}/events", 200, params=params)


def test_the_worker_never_delivers_a_poller_sink(
    api: Api, receiver: Receiver, workers: Workers, redis_client: redis.Redis
) -> None:
    stream = api.stream()
    otel = api.sink(stream, receiver.traces_url, batchSize=10)
    poller = api.call(
        "POST", f"/stream/{stream}/sink", 201, json={"type": "poller", "config": {}, "batchSize": 5}
    )
    start = poller["currentIterator"]
    workers.start()
    api.post_seqs(stream, range(30))
    receiver.wait_accepted(30, timeout=30)  # the worker runs and delivers the other sink
    assert receiver.accepted_seqs() == list(range(30))
    wait_until(
        lambda: api.get_sink(stream, otel["id"])["currentIterator"] == api.log_ids(stream)[-1],
        10,
        "the otel sink's cursor at the end",
    )

    # the reaper (every worker runs it) finds nothing to re-kick for the poller
    sinks = store_sinks.list_stream_sinks(redis_client, stream)
    assert [s.id for s in reaper.stranded(redis_client, stream, sinks)] == []
    # even a job run by hand for it returns without a request or an attempt
    engine = Engine(redis_client, Settings())
    try:
        record = store_sinks.get_sink(redis_client, poller["id"])
        assert record is not None and not delivery.has_work(redis_client, record)
        delivery.process_sink(engine, stream, poller["id"])
    finally:
        engine.close()

    after = api.get_sink(stream, poller["id"])
    assert after["status"] == "enabled" and after["failureReason"] is None
    assert after["nextRetryAt"] is None and after["currentIterator"] == start
    assert api.attempts(stream, poller["id"])["data"] == []
    assert len(receiver.settle()) == 3  # only the otel sink's three batches
    assert not redis_client.exists(f"ss:kick:{poller['id']}", f"ss:lease:{poller['id']}")

    # the consumer reads everything with its iterator, and acknowledges it
    iterator = _events(api, stream, poller["id"])["iterator"]
    seen: list[int] = []
    for _ in range(10):
        page = _events(api, stream, poller["id"], iterator=iterator, limit=8)
        seen += [int(e["payload"].split(":")[1].rstrip("}")) for e in page["data"]]
        iterator = page["iterator"]
        if page["done"]:
            break
    assert seen == list(range(30))
    _events(api, stream, poller["id"], iterator=iterator)
    last = api.log_ids(stream)[-1]
    assert api.get_sink(stream, poller["id"])["currentIterator"] == last
    acked = api.call("GET", f"/stream/{stream}/sink/{poller['id']}/last-acked-event", 200)
    assert acked["id"] == last and acked["payload"] == '{"seq":29}'
    for sink in (poller["id"], otel["id"]):
        r = api.http.get(f"/api/v1/stream/{stream}/sink/{sink}/next-event")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
    delivered = api.call("GET", f"/stream/{stream}/sink/{otel['id']}/last-acked-event", 200)
    assert delivered["id"] == last and delivered["eventType"] == "e"

    # events posted later: still no request for the poller, the otel sink gets them
    api.post_seqs(stream, range(30, 33))
    receiver.wait_accepted(33, timeout=30)
    following = api.call("GET", f"/stream/{stream}/sink/{poller['id']}/next-event", 200)
    assert following["payload"] == '{"seq":30}'
    assert api.attempts(stream, poller["id"])["data"] == []
    assert api.get_sink(stream, poller["id"])["currentIterator"] == last
