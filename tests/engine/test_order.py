"""FIFO per sink with two worker processes: every event once, in stream order."""

from __future__ import annotations

import random
import time

from rq import Worker

from .conftest import Api, Receiver, Workers, wait_until

TOTAL = 5000


def test_5000_events_in_order_with_two_workers(
    api: Api, receiver_factory, workers: Workers
) -> None:
    big: Receiver = receiver_factory()
    small: Receiver = receiver_factory()
    workers.start(wait=False)
    workers.start(wait=False)
    for proc in workers.procs:
        workers.wait_ready(proc)
    stream = api.stream()
    big_sink = api.sink(stream, big.traces_url, batchSize=100)
    small_sink = api.sink(stream, small.traces_url, batchSize=7)

    # Many appends, kicking the sinks while earlier batches are in flight or
    # just finishing, so jobs for one sink run on both processes.
    for start in range(0, TOTAL, 250):
        api.post_seqs(stream, range(start, start + 250))
        time.sleep(0.05)

    big.wait_accepted(TOTAL, timeout=45)
    small.wait_accepted(TOTAL, timeout=45)
    last = api.log_ids(stream)[-1]
    for sink in (big_sink, small_sink):
        wait_until(
            lambda s=sink: api.get_sink(stream, s["id"])["currentIterator"] == last, 5, "cursor"
        )
    assert big.accepted_seqs() == list(range(TOTAL))
    assert small.accepted_seqs() == list(range(TOTAL))
    for server, size in ((big, 100), (small, 7)):
        assert max(len(x.spans()) for x in server.settle()) == size
        assert all(x.accepted for x in server.settle())
    # Both processes took delivery jobs (the sinks' leases moved between them).
    done = {w.name: w.successful_job_count for w in Worker.all(connection=api.redis)}
    assert len(done) == 2 and all(done.values()), done


def test_no_event_waits_for_a_later_one(api: Api, receiver: Receiver, workers: Workers) -> None:
    """Appends racing with jobs that are finishing: each event is delivered
    promptly, never left for the reaper or for the next append."""
    workers.start(wait=False)
    workers.start(wait=False)
    for proc in workers.procs:
        workers.wait_ready(proc)
    stream = api.stream()
    api.sink(stream, receiver.traces_url, batchSize=1)
    posted: list[float] = []
    for i in range(150):
        posted.append(time.monotonic())
        api.post_seqs(stream, range(i, i + 1))
        time.sleep(random.random() * 0.01)
    receiver.wait_accepted(150, timeout=10)
    assert receiver.accepted_seqs() == list(range(150))
    lags = [x.at - posted[x.spans()[0]["attributes"]["seq"]] for x in receiver.settle()]
    assert max(lags) < 1.5, f"an event waited {max(lags):.2f} s"
