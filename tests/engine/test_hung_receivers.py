"""Hung receivers never starve healthy sinks (docs/architecture.md, guarantees; issue 11 item 2).

Receivers that accept and never answer hold each request until the read
timeout. Before the fix, 20 of them held all 16 delivery threads, so a healthy
sink on another stream waited for a read timeout (here 8 s) to get a thread.
Now a request waiting on an answer gives its working slot back (the waiting
lane), and a destination with ``delivery_per_destination`` slow requests in
flight gets no more threads: its other sinks are deferred.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import redis

from tests.helpers.hung_server import HungServer

from .conftest import Api, Receiver, Workers, wait_until

READ_TIMEOUT = "8"  # the old code made the healthy sink wait about this long
BOUND = 3.0  # seconds: generous for a delivery that takes ~10 ms


@pytest.fixture
def hung_servers() -> Iterator[Callable[[], HungServer]]:
    started: list[HungServer] = []

    def make() -> HungServer:
        server = HungServer()
        started.append(server)
        return server

    yield make
    for server in started:  # ends the requests in flight: workers stop at once
        server.close()


def _healthy_delays(api: Api, stream: str, healthy: Receiver, rounds: int) -> list[float]:
    """Post one event ``rounds`` times; seconds until each arrived."""
    delays = []
    for n in range(rounds):
        seen = len(healthy.accepted_spans())
        posted = time.monotonic()
        api.post_seqs(stream, range(n, n + 1))
        healthy.wait_accepted(seen + 1, timeout=20)
        delays.append(healthy.settle()[-1].at - posted)
        time.sleep(0.2)
    return delays


def test_twenty_hung_receivers_do_not_delay_a_healthy_sink(
    api: Api, receiver_factory, workers: Workers, hung_servers
) -> None:
    workers.start(delivery_read_timeout=READ_TIMEOUT, delivery_threads="16")
    hung = [hung_servers() for _ in range(20)]  # 20 destinations: no per-host cap involved
    hung_stream = api.stream("hung")
    for server in hung:
        api.sink(hung_stream, server.url, batchSize=1)
    api.post_seqs(hung_stream, range(1))  # one event for each of the 20 sinks
    time.sleep(1.0)  # their requests are in flight (before the fix: 16 of them, on every thread)

    healthy: Receiver = receiver_factory()
    stream = api.stream("healthy")
    api.sink(stream, healthy.traces_url, batchSize=1)
    delays = _healthy_delays(api, stream, healthy, rounds=5)
    assert max(delays) < BOUND, f"the healthy sink waited {max(delays):.2f} s: {delays}"
    # All 20 are in flight at once, each on one connection (no timeout fired yet).
    assert [s.accepted for s in hung] == [1] * 20


def test_one_hung_host_gets_a_bounded_number_of_threads(
    api: Api, receiver_factory, workers: Workers, hung_servers
) -> None:
    """40 sinks on one hung host: once its requests are slow, further sinks
    are deferred (no connection, status unchanged, a wake-up scheduled)
    instead of each holding a thread for the read timeout; they take their
    turns as the host's requests end."""
    # No timeout fires during the test: the host's 4 requests hang until it closes.
    workers.start(delivery_read_timeout="30", delivery_per_destination="4")
    host = hung_servers()
    first = api.stream("first")
    for _ in range(4):
        api.sink(first, host.url, batchSize=1)
    api.post_seqs(first, range(1))
    wait_until(lambda: host.accepted == 4, 10, "4 requests in flight")
    time.sleep(1.0)  # they are slow now

    stream = api.stream("later")
    later = [(stream, api.sink(stream, host.url, batchSize=1)) for _ in range(36)]
    api.post_seqs(stream, range(1))
    healthy: Receiver = receiver_factory()
    stream = api.stream("healthy")
    api.sink(stream, healthy.traces_url, batchSize=1)
    delays = _healthy_delays(api, stream, healthy, rounds=3)
    assert max(delays) < BOUND, f"the healthy sink waited {max(delays):.2f} s: {delays}"

    def deferred() -> int:
        return sum(1 for _, s in later if api.redis.exists(f"ss:wait:{s['id']}"))

    wait_until(lambda: deferred() == len(later), 10, "every later sink deferred")
    assert host.accepted == 4  # none of the 36 got a connection (or a thread) to wait in
    for stream_id, sink in later[:3]:
        state = api.get_sink(stream_id, sink["id"])
        assert state["status"] == "enabled" and state["failureReason"] is None

    # The host goes away: each request that ends hands its slot to a parked
    # sink at once (not at the fallback wake-up, 30 s or more away), whose
    # request fails fast too: every later sink is tried within seconds.
    host.close()

    def tried() -> int:
        return sum(1 for s, k in later if api.get_sink(s, k["id"])["status"] == "retrying")

    wait_until(lambda: tried() == len(later), 15, "every parked sink tried")


# --- the pool and the gate, in-process ---------------------------------------------


def test_requests_waiting_on_sinks_free_the_working_slots() -> None:
    """2 working slots; 6 deliveries wait on (hung) answers: a 7th still runs at once."""
    from streamsink.delivery.lanes import DeliveryPool
    from streamsink.sinkhttp.transport import network_wait

    pool = DeliveryPool(working=2, waiting=8)
    release = threading.Event()
    done = threading.Event()
    origin = ("http", "127.0.0.1", 9)

    def hung() -> None:
        hook = network_wait.get()
        assert hook is not None
        with hook(origin):
            release.wait(10)

    try:
        for _ in range(6):
            pool.submit(hung)
        wait_until(lambda: pool.gate.in_flight(origin) == 6, 5, "6 requests waiting")
        started = time.monotonic()
        pool.submit(done.set)  # before the waiting lane this blocked until release
        assert done.wait(2) and time.monotonic() - started < 1.0
    finally:
        release.set()
        pool.shutdown()
    assert pool.gate.in_flight(origin) == 0


def test_a_full_waiting_lane_keeps_the_working_slot() -> None:
    """Waiting lane full: the delivery waits in its working slot; submit blocks
    (back-pressure) until one ends."""
    from streamsink.delivery.lanes import DeliveryPool
    from streamsink.sinkhttp.transport import network_wait

    pool = DeliveryPool(working=1, waiting=1)
    release = threading.Event()
    origin = ("http", "127.0.0.1", 9)

    def hung() -> None:
        hook = network_wait.get()
        assert hook is not None
        with hook(origin):
            release.wait(10)

    submitted = threading.Event()
    try:
        pool.submit(hung)  # moves to the waiting lane
        wait_until(lambda: pool.gate.in_flight(origin) == 1, 5, "first waiting")
        pool.submit(hung)  # lane full: keeps the working slot
        wait_until(lambda: pool.gate.in_flight(origin) == 2, 5, "second waiting")
        threading.Thread(target=lambda: (pool.submit(lambda: None), submitted.set())).start()
        assert not submitted.wait(0.5)  # saturated: RQ would wait here
        release.set()
        assert submitted.wait(5)
    finally:
        release.set()
        pool.shutdown()


def test_gate_caps_slow_destinations_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamsink.delivery import lanes

    clock = [1000.0]
    monkeypatch.setattr(lanes.time, "monotonic", lambda: clock[0])
    gate = lanes.DestinationGate(cap=2)
    slow, fast = ("http", "10.0.0.1", 80), ("https", "collector", 443)
    a = gate.enter(slow)
    a2 = gate.enter(slow)
    assert not gate.busy(slow)  # at the cap, but young: not known slow yet
    clock[0] += lanes.SLOW_AFTER
    assert gate.busy(slow)
    gate.leave(slow, a)  # answered late: below the cap now, but remembered as slow
    assert not gate.busy(slow)
    b = gate.enter(slow)
    assert gate.busy(slow)  # at the cap and slow lately: capped at once
    gate.leave(slow, b)
    gate.leave(slow, a2)
    clock[0] += lanes.SLOW_MEMORY
    gate.enter(slow)
    gate.enter(slow)
    assert not gate.busy(slow)  # forgotten: young requests pass again
    # A fast destination is not capped, up to BURST times the cap at once.
    quick = [gate.enter(fast) for _ in range(2 * lanes.BURST - 1)]
    assert not gate.busy(fast)
    for _ in range(50):  # quick answers, 0.25 s in all
        clock[0] += 0.005
        gate.leave(fast, gate.enter(fast))
    assert not gate.busy(fast)
    gate.enter(fast)
    assert gate.busy(fast)  # a burst to a host not yet known slow: bounded too
    for started in quick:
        gate.leave(fast, started)
    assert not lanes.DestinationGate(cap=0).busy(slow)


def test_parked_sinks_take_turns_as_slots_free(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamsink.delivery import lanes

    clock = [1000.0]
    monkeypatch.setattr(lanes.time, "monotonic", lambda: clock[0])
    gate = lanes.DestinationGate(cap=1)
    host = ("http", "hung", 80)
    started = gate.enter(host)
    clock[0] += 1.0
    for n in range(3):
        assert gate.busy(host, park=("strm", f"sink{n}"))
    assert gate.busy(host, park=("strm", "sink0"))  # parked once, keeps its place
    assert gate.parked(host) == 3
    other = ("http", "other", 80)
    gate.leave(other, gate.enter(other))  # ends elsewhere: nobody resumed
    assert gate.parked(host) == 3
    assert gate.leave(host, started) == ("strm", "sink0")  # oldest first
    assert gate.leave(host, gate.enter(host)) == ("strm", "sink1")
    assert gate.leave(host, gate.enter(host)) == ("strm", "sink2")
    assert gate.leave(host, gate.enter(host)) is None and gate.parked(host) == 0
    assert not gate.busy(host, park=("strm", "sink9")) and gate.parked(host) == 0  # free: go
    # A parked sink that goes at its fallback wake-up leaves the line.
    started = gate.enter(host)
    clock[0] += 1.0
    assert gate.busy(host, park=("strm", "sink7")) and gate.busy(host, park=("strm", "sink8"))
    assert gate.leave(host, started) == ("strm", "sink7") and gate.parked(host) == 1
    assert not gate.busy(host, park=("strm", "sink8")) and gate.parked(host) == 0


def test_jobs_of_failing_sinks_wait_behind_healthy_ones(redis_client: redis.Redis) -> None:
    """Retries, re-kicks and deferrals go to ``deliver-slow``; workers take it
    only when ``deliver`` is empty, so a backlog there delays no healthy sink."""
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from streamsink.delivery import scheduling
    from streamsink.storage import base as store

    for n in range(50):
        assert scheduling.kick(redis_client, "strm_a", f"failing{n}", slow=True)
    assert scheduling.kick(redis_client, "strm_b", "healthy")
    fast, slow = scheduling.delivery_queues(redis_client)
    assert (fast.count, slow.count) == (1, 50)
    job, queue = Queue.dequeue_any(scheduling.delivery_queues(redis_client), None, redis_client)
    assert job.args == ("strm_b", "healthy") and queue.name == scheduling.QUEUE_NAME

    # A retry's wake-up (sink retrying) lands on the slow queue, a batch's wait on the other.
    due = scheduling.now_ms() + 60_000
    redis_client.hset(store.sink_key("r1"), "status", "retrying")
    redis_client.hset(store.sink_key("w1"), "status", "enabled")
    assert scheduling.wake_at(redis_client, "strm_a", "r1", due)
    assert scheduling.wake_at(redis_client, "strm_a", "w1", due)
    assert ScheduledJobRegistry(queue=slow).get_job_ids() == [f"ss-wake-r1-{due}"]
    assert ScheduledJobRegistry(queue=fast).get_job_ids() == [f"ss-wake-w1-{due}"]


def test_reaper_finds_stranded_sinks_in_one_round_trip_per_stream(api: Api) -> None:
    """Idle with pending events: stranded. A kick flag, a lease or a pending
    wake-up (a parked or waiting sink): not."""
    from streamsink.delivery import reaper, scheduling
    from streamsink.storage import sinks as store_sinks

    stream = api.stream()
    ids = [api.sink(stream, "http://127.0.0.1:9/v1/traces")["id"] for _ in range(4)]
    api.post_seqs(stream, range(1))  # kicks all four (no worker takes the jobs)
    r = api.redis
    sinks = store_sinks.list_stream_sinks(r, stream)
    assert reaper.stranded(r, stream, sinks) == []  # all kicked
    for sink_id in ids:
        scheduling.clear_kick(r, sink_id)
    r.set(scheduling.lease_key(ids[1]), "someone")
    r.set(scheduling.wait_key(ids[2]), scheduling.now_ms() + 60_000)
    r.set(scheduling.wait_key(ids[3]), scheduling.now_ms() - 1)  # due: no longer waiting
    assert [s.id for s in reaper.stranded(r, stream, sinks)] == [ids[0], ids[3]]
    api.patch_sink(stream, ids[0], status="disabled")
    sinks = store_sinks.list_stream_sinks(r, stream)
    assert [s.id for s in reaper.stranded(r, stream, sinks)] == [ids[3]]
