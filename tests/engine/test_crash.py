"""A worker killed with SIGKILL in the middle of a batch: its lease expires,
the reaper re-kicks the sink, and a new worker delivers every event (only the
batch in flight may arrive twice), within the 60 s of docs/architecture.md (guarantees)."""

from __future__ import annotations

import time

from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver, Workers

TOTAL = 50


def test_sigkill_mid_batch_loses_nothing(api: Api, receiver_factory, workers: Workers) -> None:
    # The first batch is answered slowly: it is in flight when the worker dies.
    receiver: Receiver = receiver_factory([Answer(200, delay=8)])
    first = workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(TOTAL))

    assert receiver.wait_for(1, timeout=10)
    in_flight = [s["attributes"]["seq"] for s in receiver.settle()[0].spans()]
    assert in_flight == list(range(10))
    workers.kill(first)
    killed = time.monotonic()
    workers.start()
    api.post_seqs(stream, range(TOTAL, TOTAL + 5))  # appends while the lease is stale

    receiver.wait_accepted(TOTAL + 5 + len(in_flight), timeout=60)
    recovered = time.monotonic() - killed
    print(f"recovered {recovered:.1f} s after SIGKILL")
    time.sleep(0.3)
    exchanges = receiver.settle()
    # The batch in flight came again; everything after it once, in order.
    after = [s["attributes"]["seq"] for x in exchanges[1:] for s in x.spans()]
    assert after == list(range(TOTAL + 5))
    assert all(x.accepted for x in exchanges)
    state = api.get_sink(stream, sink["id"])
    assert state["status"] == "enabled"
    assert state["currentIterator"] == api.log_ids(stream)[-1]


def test_sigterm_finishes_the_batch_in_flight_and_hands_over(
    api: Api, receiver_factory, workers: Workers
) -> None:
    """A graceful stop lets the batch in flight finish (no duplicate), releases
    the lease at once, and another worker carries on without waiting for it
    to expire."""
    receiver: Receiver = receiver_factory([Answer(200, delay=2)])
    first = workers.start()
    stream = api.stream()
    api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(TOTAL))
    assert receiver.wait_for(1, timeout=10)
    receiver.default = Answer(200, delay=0.5)  # keep later batches slow too
    workers.start()
    stopping = time.monotonic()
    first.terminate()
    first.wait(timeout=20)
    stopped = time.monotonic() - stopping
    assert first.returncode == 0, workers.logs()
    assert stopped < 3.0, f"the worker took {stopped:.1f} s to stop"
    receiver.wait_accepted(TOTAL, timeout=20)
    took = time.monotonic() - stopping
    assert took < 10.0, f"hand-over took {took:.1f} s"
    time.sleep(0.3)
    assert receiver.accepted_seqs() == list(range(TOTAL))
