"""Lingering (``job._linger``, ``lanes.idle_wait``): a sink that delivers
steadily and caught up waits for its next events holding its lease, so steady
POSTs reach it without a job each (a sink's first batch never lingers); a
worker killed while it waits frees the sink in about the wait plus a second.
Real workers, real Redis, a receiver on 127.0.0.1."""

from __future__ import annotations

import threading
import time

import pytest
import redis
from rq import Worker

from streamsink.delivery import scheduling
from streamsink.delivery.job import LINGER_GRACE_MS

from .conftest import Api, Receiver, Workers, wait_until


def jobs_run(r: redis.Redis) -> int:
    """Delivery jobs the workers took so far (RQ's ``successful_job_count``)."""
    return sum(w.successful_job_count for w in Worker.all(connection=r))


@pytest.mark.parametrize(("linger_ms", "lingers"), [("2000", True), ("0", False)])
def test_steady_posts_reach_a_lingering_sink_without_a_job_each(
    api: Api, receiver: Receiver, workers: Workers, linger_ms: str, lingers: bool
) -> None:
    workers.start(delivery_linger_ms=linger_ms)
    stream = api.stream()
    api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(3))
    receiver.wait_accepted(3, timeout=15)
    before = jobs_run(api.redis)
    for i in range(1, 6):  # each POST well within the 2 s wait after the last batch
        # (the first of them starts a job: one batch alone is not steady traffic)
        api.post_seqs(stream, range(3 * i, 3 * i + 3))
        receiver.wait_accepted(3 * i + 3, timeout=15)
    assert receiver.accepted_seqs() == list(range(18))  # in order, once each
    extra = jobs_run(api.redis) - before
    if lingers:
        assert extra == 1  # the sink's thread took the four after it
    else:
        assert extra >= 5, extra  # a job per POST: what lingering saves


def test_a_worker_killed_while_lingering_frees_its_sink_soon(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    first = workers.start(delivery_linger_ms="2000")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    lease = scheduling.lease_key(sink["id"])
    for i in range(2):  # two batches within a few seconds: steady traffic
        api.post_seqs(stream, range(3 * i, 3 * i + 3))
        receiver.wait_accepted(3 * i + 3, timeout=15)
    # Lingering: the lease is cut to the wait plus the grace, not its 15 s.
    cut = 2000 + LINGER_GRACE_MS
    ttl = wait_until(lambda: 0 < api.redis.pttl(lease) <= cut and api.redis.pttl(lease), 2, "cut")
    assert ttl <= cut < scheduling.LEASE_TTL_MS
    workers.kill(first)
    killed = time.monotonic()
    wait_until(lambda: not api.redis.exists(lease), cut / 1000 + 2, "the lease to expire")
    assert time.monotonic() - killed < scheduling.LEASE_TTL_MS / 1000
    workers.start()
    api.post_seqs(stream, range(6, 9))
    receiver.wait_accepted(9, timeout=20)  # the kick flag expired too: a job, or the reaper
    assert receiver.accepted_seqs() == list(range(9))


# --- the pool and the engine's memory of batches, in-process ------------------------


def test_recent_batches_tell_steady_sinks(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamsink.delivery import engine

    clock = [100.0]
    monkeypatch.setattr(engine.time, "monotonic", lambda: clock[0])
    recent = engine.RecentBatches(cap=2)
    assert not recent.steady("a", 1.0)  # a first batch
    clock[0] += 0.5
    assert recent.steady("a", 1.0)
    clock[0] += 1.5
    assert not recent.steady("a", 1.0)  # too long after the last
    assert not recent.steady("b", 1.0)
    assert not recent.steady("c", 1.0)  # over the cap: "a", the oldest, is forgotten
    assert not recent.steady("a", 1.0)


def test_idle_wait_takes_a_linger_slot_and_frees_the_working_one() -> None:
    from streamsink.delivery import lanes
    from streamsink.delivery.lanes import DeliveryPool

    with lanes.idle_wait() as admitted:  # no pool (a plain rq worker): never
        assert not admitted
    pool = DeliveryPool(working=1, waiting=4, linger=1)
    release, inside, answers = threading.Event(), threading.Event(), []

    def linger() -> None:
        with lanes.idle_wait() as ok:
            answers.append(ok)
            inside.set()
            if ok:
                release.wait(10)

    ran = threading.Event()
    try:
        pool.submit(linger)
        assert inside.wait(5) and answers == [True]
        inside.clear()
        pool.submit(linger)  # the working slot is free: it runs, but no linger slot is left
        assert inside.wait(5) and answers == [True, False]
        pool.submit(ran.set)
        assert ran.wait(5)
    finally:
        release.set()
        pool.shutdown()

    off = DeliveryPool(working=1, waiting=4, linger=0)
    try:
        inside.clear()
        off.submit(linger)
        assert inside.wait(5) and answers[-1] is False
    finally:
        off.shutdown()
