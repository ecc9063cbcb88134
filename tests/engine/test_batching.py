"""batchSize / maxWaitSecs: a partial batch waits for its oldest event to be
``maxWaitSecs`` old (a scheduled wake-up, not a busy loop); full batches go at once."""

from __future__ import annotations

import time

from .conftest import Api, Receiver, Workers, wait_until


def test_partial_batch_waits_max_wait_secs(api: Api, receiver: Receiver, workers: Workers) -> None:
    workers.start()
    stream = api.stream()
    api.sink(stream, receiver.traces_url, batchSize=3, maxWaitSecs=2)
    posted = time.monotonic()
    api.post_seqs(stream, range(2))

    assert receiver.wait_for(1, timeout=10)
    first = receiver.settle()[0]
    waited = first.at - posted
    assert 1.8 <= waited <= 5.0, f"partial batch sent after {waited:.2f} s"
    assert [s["attributes"]["seq"] for s in first.spans()] == [0, 1]
    time.sleep(0.5)
    assert len(receiver.settle()) == 1  # never an empty or repeated batch


def test_full_batches_go_at_once_then_the_rest_after_the_wait(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=3, maxWaitSecs=2)
    posted = time.monotonic()
    api.post_seqs(stream, range(7))

    assert receiver.wait_for(3, timeout=10)
    exchanges = receiver.settle()
    assert [len(x.spans()) for x in exchanges] == [3, 3, 1]
    assert receiver.accepted_seqs() == list(range(7))
    assert exchanges[1].at - posted < 1.8, "full batches must not wait for maxWaitSecs"
    waited = exchanges[2].at - posted
    assert 1.8 <= waited <= 5.0, f"the last event was sent after {waited:.2f} s"

    ids = api.log_ids(stream)
    wait_until(lambda: api.get_sink(stream, sink["id"])["currentIterator"] == ids[-1], 5, "cursor")
    # Events that arrive later start a new wait of their own.
    posted = time.monotonic()
    api.post_seqs(stream, range(7, 8))
    assert receiver.wait_for(4, timeout=10)
    waited = receiver.settle()[3].at - posted
    assert 1.8 <= waited <= 5.0, f"a later single event was sent after {waited:.2f} s"
