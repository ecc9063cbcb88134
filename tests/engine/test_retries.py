"""Retryable answers: the sink shows ``retrying`` with ``nextRetryAt``, backs off
(honouring ``Retry-After``) and, once the receiver recovers, delivers everything
once and is ``enabled`` again."""

from __future__ import annotations

import time

from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver, Workers, wait_until


def test_503_twice_then_200_delivers_everything(
    api: Api, receiver_factory, workers: Workers
) -> None:
    receiver: Receiver = receiver_factory([Answer(503, "busy"), Answer(503, "busy")])
    workers.start(retry_schedule="0,1500ms,1500ms,1500ms")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=10)
    api.post_seqs(stream, range(5))

    assert receiver.wait_for(1, timeout=10)
    retrying = api.wait_status(stream, sink["id"], "retrying", timeout=5)
    now_ms = time.time() * 1000
    assert retrying["nextRetryAt"] is not None
    assert "503" in retrying["failureReason"]
    # nextRetryAt is an RFC 3339 time, in the future, within the schedule (+-20% jitter)
    from datetime import datetime

    next_ms = datetime.fromisoformat(retrying["nextRetryAt"]).timestamp() * 1000
    assert now_ms - 100 < next_ms < now_ms + 2000

    receiver.wait_accepted(5, timeout=15)
    enabled = api.wait_status(stream, sink["id"], "enabled", timeout=5)
    assert enabled["nextRetryAt"] is None and enabled["failureReason"] is None
    exchanges = receiver.settle()
    assert [x.answer.status for x in exchanges] == [503, 503, 200]
    assert [s["attributes"]["seq"] for x in exchanges for s in x.spans()] == list(range(5)) * 3
    assert receiver.accepted_seqs() == list(range(5))
    gaps = [b.at - a.at for a, b in zip(exchanges, exchanges[1:], strict=False)]
    assert all(g >= 1.1 for g in gaps), gaps  # backed off, not hammering

    attempts = api.attempts(stream, sink["id"])["data"]
    assert [(a["outcome"], a["statusCode"]) for a in attempts] == [
        ("success", 200),
        ("retrying", 503),
        ("retrying", 503),
    ]


def test_429_retry_after_is_honoured(api: Api, receiver_factory, workers: Workers) -> None:
    answers = [Answer(429, headers={"Retry-After": "1"}), Answer(429, headers={"Retry-After": "1"})]
    receiver: Receiver = receiver_factory(answers)
    # The schedule alone would retry after ~0.1 s: Retry-After must win.
    workers.start(retry_schedule="0,100ms,100ms,100ms")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(3))

    assert receiver.wait_for(1, timeout=10)
    api.wait_status(stream, sink["id"], "retrying", timeout=5)
    receiver.wait_accepted(3, timeout=15)
    exchanges = receiver.settle()
    assert [x.answer.status for x in exchanges] == [429, 429, 200]
    for a, b in zip(exchanges, exchanges[1:], strict=False):
        assert b.at - a.at >= 0.95, "Retry-After: 1 not honoured"
    assert receiver.accepted_seqs() == [0, 1, 2]
    api.wait_status(stream, sink["id"], "enabled", timeout=5)


def test_exhausted_schedule_disables_and_events_wait(
    api: Api, receiver_factory, workers: Workers
) -> None:
    receiver: Receiver = receiver_factory(default=Answer(502, "bad gateway"))
    workers.start(retry_schedule="0,200ms,200ms")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(2))

    disabled = api.wait_status(stream, sink["id"], "disabled", timeout=10)
    assert "retries exhausted" in disabled["failureReason"] and "502" in disabled["failureReason"]
    assert len(receiver.settle()) == 3  # the first attempt and 2 retries
    receiver.default = Answer(200)
    api.patch_sink(stream, sink["id"], status="enabled")
    receiver.wait_accepted(2, timeout=10)
    assert receiver.accepted_seqs() == [0, 1]
    wait_until(lambda: api.get_sink(stream, sink["id"])["failureReason"] is None, 5, "reset")
