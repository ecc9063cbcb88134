"""eventTypes filters what a sink gets (its cursor still moves past the rest),
and a 413 from the receiver splits the batch until every span fits, once."""

from __future__ import annotations

import time

from .conftest import Api, Receiver, Workers, wait_until


def test_event_types_filter(api: Api, receiver: Receiver, workers: Workers) -> None:
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=3, eventTypes=["keep"])
    kinds = ["keep", "drop", "keep", "other", "keep", "keep", "drop", "drop"]
    api.post(stream, [(t, f'{{"seq": {i}}}') for i, t in enumerate(kinds)])
    ids = api.log_ids(stream)

    receiver.wait_accepted(4, timeout=10)
    assert receiver.accepted_seqs() == [0, 2, 4, 5]
    assert {s["name"] for s in receiver.accepted_spans()} == {"keep"}
    assert [len(x.spans()) for x in receiver.settle()] == [3, 1]
    # The cursor moves past the trailing events nobody here wants.
    wait_until(lambda: api.get_sink(stream, sink["id"])["currentIterator"] == ids[-1], 5, "cursor")

    # Only unwanted events: nothing is sent, yet the cursor catches up (the
    # reaper notices the sink is behind).
    api.post(stream, [("drop", '{"seq": 100}'), ("other", '{"seq": 101}')])
    ids = api.log_ids(stream)
    wait_until(lambda: api.get_sink(stream, sink["id"])["currentIterator"] == ids[-1], 15, "cursor")
    api.post(stream, [("drop", '{"seq": 102}'), ("keep", '{"seq": 103}')])
    receiver.wait_accepted(5, timeout=10)
    time.sleep(0.3)
    assert receiver.accepted_seqs() == [0, 2, 4, 5, 103]
    assert len(receiver.settle()) == 3  # never an empty batch


def test_413_splits_until_every_span_fits(api: Api, receiver_factory, workers: Workers) -> None:
    workers.start()
    # ~1 KiB per span: a batch of 20 is ~20 KiB; the receiver takes at most 6 KiB.
    receiver: Receiver = receiver_factory(max_body=6 * 1024)
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=20)
    api.post_seqs(stream, range(20), pad="x" * 1000)

    receiver.wait_accepted(20, timeout=15)
    time.sleep(0.3)
    assert receiver.accepted_seqs() == list(range(20))
    exchanges = receiver.settle()
    rejected = [x for x in exchanges if not x.accepted]
    assert rejected and all(x.answer.status == 413 for x in rejected)
    # Halves of what got 413, never the same spans twice.
    chunks = [tuple(s["attributes"]["seq"] for s in x.spans()) for x in exchanges]
    assert len(chunks) == len(set(chunks)), chunks
    assert all(len(x.request.body) <= 6 * 1024 for x in exchanges if x.accepted)
    state = api.wait_status(stream, sink["id"], "enabled", timeout=5)
    assert state["currentIterator"] == api.log_ids(stream)[-1]
    assert state["failureReason"] is None
    attempt = api.attempts(stream, sink["id"])["data"][0]
    assert attempt["outcome"] == "success" and attempt["spansSent"] == 20


def test_trimming_keeps_what_a_disabled_sink_has_not_had(
    api: Api, receiver_factory, workers: Workers
) -> None:
    """With no retention at all, the reaper trims the log, but never past the
    slowest sink's cursor: a disabled sink, re-enabled, still gets everything."""
    fast: Receiver = receiver_factory()
    held: Receiver = receiver_factory()
    alone: Receiver = receiver_factory()
    workers.start(log_retention_secs="0")
    stream = api.stream()
    api.sink(stream, fast.traces_url, batchSize=100)
    paused = api.sink(stream, held.traces_url, batchSize=100, status="disabled")
    other = api.stream("other")  # one sink only: delivered entries can go
    api.sink(other, alone.traces_url, batchSize=100)
    api.post_seqs(stream, range(600))
    api.post_seqs(other, range(600))
    fast.wait_accepted(600, timeout=10)
    alone.wait_accepted(600, timeout=10)
    wait_until(lambda: len(api.log_ids(other)) < 600, 10, "a trimming round")
    assert len(api.log_ids(stream)) == 600

    api.patch_sink(stream, paused["id"], status="enabled")
    held.wait_accepted(600, timeout=10)
    assert held.accepted_seqs() == list(range(600))
