"""``delivery.reaper``: re-kicks sinks stranded with work (no job, no lease, no
wake-up pending) and trims event logs, one process at a time (real Redis, RQ
queues inspected directly; no worker runs, so nothing is delivered)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from rq import Queue

from streamsink.delivery import reaper, scheduling
from streamsink.delivery.engine import Engine
from streamsink.storage import eventlog, keys
from streamsink.storage import sinks as store_sinks
from tests.helpers.receiver_server import closed_port_url

from ..conftest import Api

URL = closed_port_url()


def _lose_jobs(r: redis.Redis) -> None:
    """What a SIGKILL leaves behind once the kick flags expired: no flag, no job."""
    for key in r.scan_iter("ss:kick:*"):
        r.delete(key)
    for queue in scheduling.delivery_queues(r):
        queue.empty()


def _jobs(r: redis.Redis, name: str) -> list[tuple[str, ...]]:
    return [tuple(job.args) for job in Queue(name, connection=r).get_jobs()]


def test_a_stranded_sink_is_kicked_again(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory()
    stream = api.stream()
    sink = api.sink(stream, URL)
    api.post(stream, 3)
    assert _jobs(redis_client, scheduling.QUEUE_NAME) == [(stream, sink)]  # the append's kick
    _lose_jobs(redis_client)

    assert reaper.reap(engine) == 1
    assert _jobs(redis_client, scheduling.QUEUE_NAME) == [(stream, sink)]
    assert redis_client.exists(scheduling.kick_key(sink))
    # One round at a time: a second one right after does nothing.
    assert reaper.reap(engine) == 0
    # Another round finds the job queued (its kick flag set): no second job.
    redis_client.delete(reaper.REAP_LOCK)
    assert reaper.reap(engine) == 0
    assert len(_jobs(redis_client, scheduling.QUEUE_NAME)) == 1


def test_only_idle_sinks_with_due_work_are_kicked(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory()
    stream = api.stream()
    leased = api.sink(stream, URL)
    waiting = api.sink(stream, URL)
    disabled = api.sink(stream, URL)
    retry_later = api.sink(stream, URL)
    retry_due = api.sink(stream, URL)
    api.post(stream, 2)
    caught_up = api.sink(stream, URL)  # starts at the log's end: no work
    _lose_jobs(redis_client)

    now = scheduling.now_ms()
    scheduling.Lease(redis_client, leased).acquire()
    redis_client.set(scheduling.wait_key(waiting), now + 60_000)
    api.call("PATCH", f"/stream/{stream}/sink/{disabled}", 200, json={"status": "disabled"})
    store_sinks.update_sink_state(
        redis_client, retry_later, status="retrying", next_retry_at=now + 60_000
    )
    store_sinks.update_sink_state(redis_client, retry_due, status="retrying", next_retry_at=now)

    assert reaper.reap(engine) == 1
    # A failing sink waits behind healthy ones: its re-kick goes to the slow queue.
    assert _jobs(redis_client, scheduling.SLOW_QUEUE_NAME) == [(stream, retry_due)]
    assert _jobs(redis_client, scheduling.QUEUE_NAME) == []
    for sink in (waiting, disabled, retry_later, caught_up):
        assert not redis_client.exists(scheduling.kick_key(sink)), sink


def test_stranded_checks_every_sink_of_the_stream(api: Api, redis_client: redis.Redis) -> None:
    stream = api.stream()
    ids = [api.sink(stream, URL) for _ in range(5)]
    api.post(stream, 1)
    _lose_jobs(redis_client)
    sinks = store_sinks.list_stream_sinks(redis_client, stream)
    assert sorted(s.id for s in reaper.stranded(redis_client, stream, sinks)) == sorted(ids)
    redis_client.set(scheduling.kick_key(ids[0]), 1)
    scheduling.Lease(redis_client, ids[1]).acquire()
    left = sorted(s.id for s in reaper.stranded(redis_client, stream, sinks))
    assert left == sorted(ids[2:])


def _log_ids(r: redis.Redis, stream: str) -> list[str]:
    return [e.id for e in eventlog.parse_entries(r.xrange(keys.event_log(stream)))]


def test_trim_keeps_what_the_slowest_sink_owes(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory(log_retention_secs=0)
    stream = api.stream()
    api.post(stream, 300, per=10)
    ids = _log_ids(redis_client, stream)
    slow, fast = api.sink(stream, URL), api.sink(stream, URL)  # both at the log's end
    store_sinks.update_sink_state(redis_client, slow, cursor="0-0")  # owes everything

    reaper.trim_log(engine, stream)  # the cursors are read from the sinks
    assert _log_ids(redis_client, stream) == ids

    store_sinks.update_sink_state(redis_client, slow, cursor=ids[249])
    reaper.trim_log(engine, stream)
    kept = _log_ids(redis_client, stream)
    assert len(kept) < len(ids)  # old entries every sink passed are gone...
    assert kept == ids[len(ids) - len(kept) :]  # ...from the front only...
    assert set(ids[250:]) <= set(kept)  # ...and all the slowest sink owes is kept
    assert api.get_sink(stream, fast)["droppedEvents"] == 0


def test_trim_keeps_events_younger_than_the_retention(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory(log_retention_secs=3600)
    stream = api.stream()
    api.post(stream, 300)
    ids = _log_ids(redis_client, stream)
    reaper.trim_log(engine, stream, [ids[-1]])  # every sink passed them, but they are new
    assert _log_ids(redis_client, stream) == ids


def test_a_round_trims_once_a_minute(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory(log_retention_secs=0)
    stream = api.stream()
    api.post(stream, 300)
    api.sink(stream, URL)  # at the log's end: it owes nothing
    redis_client.set(reaper.TRIM_LOCK, 1, ex=60)  # another process trimmed lately
    reaper.reap(engine)
    assert len(_log_ids(redis_client, stream)) == 300
    redis_client.delete(reaper.REAP_LOCK, reaper.TRIM_LOCK)
    reaper.reap(engine)
    assert len(_log_ids(redis_client, stream)) < 300
