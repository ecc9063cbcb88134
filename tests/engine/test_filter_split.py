"""eventTypes filters what a sink gets (its cursor still moves past the rest),
and a 413 from the receiver splits the batch until every span fits, once."""

from __future__ import annotations

import time

from streamsink.storage import eventlog

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


def _owed_and_filtered(api: Api, fast: Receiver, held: Receiver) -> tuple[str, str, str]:
    """A stream with an enabled sink that takes only ``e`` and a disabled sink,
    600 ``e`` events and 10 ``x`` ones; the filtered sink has all it wants and its
    cursor has moved past the ``x`` ones too. (stream, filtered id, disabled id)"""
    stream = api.stream()
    filtered = api.sink(stream, fast.traces_url, batchSize=100, eventTypes=["e"])
    paused = api.sink(stream, held.traces_url, batchSize=100, status="disabled")
    api.post_seqs(stream, range(600))
    api.post_seqs(stream, range(600, 610), event_type="x")
    ids = api.log_ids(stream)
    fast.wait_accepted(600, timeout=10)
    wait_until(
        lambda: api.get_sink(stream, filtered["id"])["currentIterator"] == ids[-1],
        15,
        "the filtered sink's cursor past the x events",
    )
    assert fast.accepted_seqs() == list(range(600))
    assert held.accepted_seqs() == []
    return stream, filtered["id"], paused["id"]


def test_inside_the_window_a_disabled_sink_keeps_what_it_has_not_had(
    api: Api, receiver_factory, workers: Workers
) -> None:
    """Within STREAMSINK_LOG_RETENTION_SECS a trim keeps every event a disabled
    sink has not had (the filtered sink, done with them, holds nothing):
    re-enabled, it gets everything, nothing dropped."""
    fast: Receiver = receiver_factory()
    held: Receiver = receiver_factory()
    workers.start()  # the default window: 1 h
    stream, _, paused = _owed_and_filtered(api, fast, held)
    assert eventlog.trim_stream(api.redis, stream).removed == 0  # a trimming round
    assert len(api.log_ids(stream)) == 610
    assert api.get_sink(stream, paused)["droppedEvents"] == 0

    api.patch_sink(stream, paused, status="enabled")
    held.wait_accepted(610, timeout=10)
    assert held.accepted_seqs() == list(range(610))
    assert api.get_sink(stream, paused)["droppedEvents"] == 0


def test_past_the_window_a_disabled_sinks_events_are_dropped_and_counted(
    api: Api, receiver_factory, workers: Workers
) -> None:
    """With no window at all the reaper trims what every enabled sink has had,
    the disabled sink's owed events included: each one counted in its
    ``droppedEvents`` (never silently); re-enabled, it resumes with new events."""
    fast: Receiver = receiver_factory()
    held: Receiver = receiver_factory()
    alone: Receiver = receiver_factory()
    workers.start(log_retention_secs="0")
    other = api.stream("other")  # one sink only: delivered entries go
    api.sink(other, alone.traces_url, batchSize=100)
    api.post_seqs(other, range(600))
    stream, _, paused = _owed_and_filtered(api, fast, held)
    alone.wait_accepted(600, timeout=10)

    def dropped() -> int:
        return int(api.get_sink(stream, paused)["droppedEvents"])

    wait_until(lambda: dropped() == 610, 30, "the disabled sink's events dropped, counted")
    assert api.log_ids(stream) == []
    wait_until(lambda: api.log_ids(other) == [], 30, "a trimming round of the other stream")
    state = api.get_sink(stream, paused)
    assert state["droppedSince"] is not None and state["status"] == "disabled"

    api.patch_sink(stream, paused, status="enabled")
    api.post_seqs(stream, range(700, 703))
    held.wait_accepted(3, timeout=10)
    fast.wait_accepted(603, timeout=10)
    time.sleep(0.3)
    assert held.accepted_seqs() == [700, 701, 702]  # the dropped ones are gone, counted
    assert dropped() == 610
    assert fast.accepted_seqs() == [*range(600), 700, 701, 702]
