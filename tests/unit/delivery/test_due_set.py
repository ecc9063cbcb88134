"""Housekeeping by work (``delivery.reaper`` with ``ss:due`` / ``ss:trim-due``):
the reaper looks only at sinks that have work or changed, so many idle sinks
cost a constant few commands per round, while every sink that needs it is
still retried, flushed or reclaimed on time (real Redis; no worker runs, RQ
queues are inspected directly)."""

from __future__ import annotations

from collections.abc import Callable

import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from streamsink.delivery import reaper, scheduling
from streamsink.delivery.engine import Engine
from streamsink.storage import attempts, keys, metrics, sink_edits
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams
from tests.helpers.receiver_server import closed_port_url

from ..conftest import Api

URL = closed_port_url()
IDLE = 200


def _idle(r: redis.Redis, count: int = IDLE) -> list[str]:
    """``count`` streams with one sink each and nothing to deliver."""
    out = []
    for i in range(count):
        stream = store_streams.create_stream(r, name=f"idle-{i}", uid=None, metadata=None)
        out.append(sink_edits.create_sink(r, stream.id, {"type": "otelTracing", "url": URL}).id)
    return out


def _calls(r: redis.Redis) -> int:
    stats = r.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")


def _lose_jobs(r: redis.Redis) -> None:
    """A lost job: no kick flag, no queued or scheduled job."""
    for key in r.scan_iter("ss:kick:*"):
        r.delete(key)
    for queue in scheduling.delivery_queues(r):
        queue.empty()
        registry = ScheduledJobRegistry(queue=queue)
        for job_id in registry.get_job_ids():
            registry.remove(job_id)


def _jobs(r: redis.Redis, name: str) -> list[tuple[str, ...]]:
    return [tuple(job.args) for job in Queue(name, connection=r).get_jobs()]


def _round(engine: Engine) -> int:
    engine.redis.delete(reaper.REAP_LOCK, reaper.TRIM_LOCK)
    return reaper.reap(engine)


def test_idle_sinks_cost_a_constant_few_commands_per_round(
    redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory()
    _idle(redis_client)
    _round(engine)  # builds the sets once (a data dir without them)
    before = _calls(redis_client)
    for _ in range(5):
        assert _round(engine) == 0
    per_round = (_calls(redis_client) - before - 5) / 5  # the test's DEL left out
    # Lock, built?, due page, trim lock, trim page: none per sink (the walk
    # this replaced cost five commands per sink and round: 1,000 here).
    assert per_round <= 6, per_round
    # The gauge reads kept counts: one round trip whatever the number of sinks.
    before = _calls(redis_client)
    assert metrics.sinks_by_status(redis_client)["enabled"] == IDLE
    assert _calls(redis_client) - before <= 2


def test_a_lost_job_is_found_among_idle_sinks(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory()
    _idle(redis_client)
    _round(engine)
    stream = api.stream()
    sink = api.sink(stream, URL)
    api.post(stream, 3)
    _lose_jobs(redis_client)
    assert _round(engine) == 1
    assert _jobs(redis_client, scheduling.QUEUE_NAME) == [(stream, sink)]
    # Kicked: busy until its job ends, looked at again later, not every round.
    assert _round(engine) == 0
    assert redis_client.zscore(keys.DUE, sink) > scheduling.now_ms() + 5000


def test_a_retrying_sink_is_retried_when_due_even_without_the_scheduler(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine_factory()
    _idle(redis_client)
    stream = api.stream()
    sink = api.sink(stream, URL)
    api.post(stream, 2)
    now = scheduling.now_ms()
    due = now + 30_000
    store_sinks.update_sink_state(redis_client, sink, status="retrying", next_retry_at=due)
    _lose_jobs(redis_client)
    scheduling.wake_at(redis_client, stream, sink, due, slow=True)
    _lose_jobs(redis_client)  # and RQ's scheduler lost the wake-up job
    assert reaper.reap_due(redis_client, now) == 0
    assert reaper.reap_due(redis_client, due - 1) == 0  # not yet
    assert reaper.reap_due(redis_client, due + scheduling.WAKE_GRACE_MS) == 1
    assert _jobs(redis_client, scheduling.SLOW_QUEUE_NAME) == [(stream, sink)]


def test_events_waiting_past_max_wait_are_flushed(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine_factory()
    _idle(redis_client)
    stream = api.stream()
    sink = api.sink(stream, URL, batchSize=100, maxWaitSecs=20)
    api.post(stream, 1)
    due = scheduling.now_ms() + 20_000
    scheduling.wake_at(redis_client, stream, sink, due)  # what the job does
    _lose_jobs(redis_client)  # the job ended; the wake-up is lost
    assert reaper.reap_due(redis_client, due - 1000) == 0
    assert reaper.reap_due(redis_client, due + scheduling.WAKE_GRACE_MS) == 1
    assert _jobs(redis_client, scheduling.QUEUE_NAME) == [(stream, sink)]


def test_an_expired_lease_is_reclaimed(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine_factory()
    _idle(redis_client)
    stream = api.stream()
    sink = api.sink(stream, URL)
    api.post(stream, 2)
    _lose_jobs(redis_client)
    scheduling.Lease(redis_client, sink).acquire()  # a worker that then dies
    now = scheduling.now_ms()
    assert reaper.reap_due(redis_client, now) == 0  # busy: looked at again later
    redis_client.delete(scheduling.lease_key(sink))  # the lease expired
    assert reaper.reap_due(redis_client, now + reaper.BUSY_RECHECK_MS) == 1
    assert _jobs(redis_client, scheduling.QUEUE_NAME) == [(stream, sink)]


def test_an_idle_sink_leaves_the_due_set(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine_factory()
    stream = api.stream()
    caught_up = api.sink(stream, URL)
    disabled = api.sink(stream, URL)
    api.call("PATCH", f"/stream/{stream}/sink/{disabled}", 200, json={"status": "disabled"})
    _lose_jobs(redis_client)
    redis_client.zadd(keys.DUE, {caught_up: 0, disabled: 0, "sink_gone": 0})
    assert reaper.reap_due(redis_client) == 0
    assert redis_client.zcard(keys.DUE) == 0
    # A job that ends with nothing to do takes its sink out too.
    scheduling.kick(redis_client, stream, caught_up)
    assert redis_client.zscore(keys.DUE, caught_up) is not None
    scheduling.clear_kick(redis_client, caught_up)
    assert scheduling.settle(redis_client, caught_up)
    assert redis_client.zscore(keys.DUE, caught_up) is None


def test_only_streams_with_appends_are_trimmed(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    engine = engine_factory(log_retention_secs=0)
    _idle(redis_client, 50)
    stream = api.stream()
    api.post(stream, 20)
    api.sink(stream, URL)  # at the log's end: owes nothing
    assert [m.decode() for m in redis_client.zrange(keys.TRIM_DUE, 0, -1)] == [stream]
    assert reaper.trim_due(engine) == 1
    assert redis_client.xlen(keys.event_log(stream)) == 0
    assert redis_client.zcard(keys.TRIM_DUE) == 0  # empty log: out of the set


def test_deleting_takes_attempts_retries_and_due_entries_along(
    api: Api, redis_client: redis.Redis
) -> None:
    stream = api.stream()
    first, second = api.sink(stream, URL), api.sink(stream, URL)
    api.post(stream, 2)
    for sink in (first, second):
        attempts.record(redis_client, sink, attempts.Attempt("retrying", 1, 3.0))
        store_sinks.note_failure(redis_client, sink, count=True, now_ms=1)
        assert redis_client.exists(keys.attempts(sink), keys.retries(sink)) == 2
        assert redis_client.zscore(keys.DUE, sink) is not None
    assert metrics.sinks_by_status(redis_client)["enabled"] == 2

    api.call("DELETE", f"/stream/{stream}/sink/{first}", 204)
    assert redis_client.exists(keys.attempts(first), keys.retries(first)) == 0
    assert redis_client.zscore(keys.DUE, first) is None
    assert redis_client.exists(keys.attempts(second), keys.retries(second)) == 2
    assert metrics.sinks_by_status(redis_client)["enabled"] == 1

    api.call("DELETE", f"/stream/{stream}", 204)
    assert redis_client.exists(keys.attempts(second), keys.retries(second)) == 0
    assert redis_client.zscore(keys.DUE, second) is None
    assert redis_client.zscore(keys.TRIM_DUE, stream) is None
    assert metrics.sinks_by_status(redis_client)["enabled"] == 0


def test_status_counts_follow_every_change(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    stream = api.stream()
    a, b, c = (api.sink(stream, URL) for _ in range(3))
    api.call("PATCH", f"/stream/{stream}/sink/{a}", 200, json={"status": "disabled"})
    store_sinks.update_sink_state(redis_client, b, status="retrying", next_retry_at=1)
    store_sinks.update_sink_state(redis_client, b, status="retrying", next_retry_at=2)
    api.call("PATCH", f"/stream/{stream}/sink/{a}", 200, json={"status": "enabled"})
    store_sinks.update_sink_state(redis_client, c, status="disabled")
    want = {"enabled": 1, "disabled": 1, "paused": 0, "retrying": 1}
    assert metrics.sinks_by_status(redis_client) == want
    # The walk that builds them for an older data dir finds the same.
    redis_client.delete(keys.SINK_STATUS_COUNTS, keys.HOUSEKEEPING_BUILT)
    assert metrics.sinks_by_status(redis_client) == want
    reaper.build(redis_client)
    assert metrics.sinks_by_status(redis_client) == want
