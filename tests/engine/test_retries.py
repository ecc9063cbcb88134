"""Retryable answers: the sink shows ``retrying`` with ``nextRetryAt``, backs off
(the receiver's ``Retry-After`` is the wait, capped; otherwise the exponential
1s..60s schedule) and, once the receiver recovers, delivers everything once and
is ``enabled`` again; a sink failing for ``STREAMSINK_RETRY_MAX_ELAPSED`` is
disabled with its events kept."""

from __future__ import annotations

import time
from datetime import datetime

import redis

from streamsink.settings import Settings
from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver, Workers, wait_until

DEFAULT_SCHEDULE = Settings.model_fields["retry_schedule"].default


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


# --- the default schedule and the receiver's Retry-After ---------------------------


def _ms(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() * 1000


def test_503_then_429_with_retry_after_1_delivered_within_5_s(
    api: Api, receiver_factory, workers: Workers
) -> None:
    answers = [Answer(503, headers={"Retry-After": "1"}), Answer(429, headers={"Retry-After": "1"})]
    receiver: Receiver = receiver_factory(answers)
    workers.start(retry_schedule=DEFAULT_SCHEDULE)
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(3))

    receiver.wait_accepted(3, timeout=15)
    exchanges = receiver.settle()
    assert [x.answer.status for x in exchanges] == [503, 429, 200]
    assert exchanges[-1].at - exchanges[0].at < 5.0, "Retry-After: 1 is the wait"
    for a, b in zip(exchanges, exchanges[1:], strict=False):
        assert b.at - a.at >= 0.95
    out = api.wait_status(stream, sink["id"], "enabled", timeout=5)
    assert out["failureReason"] is None and out["nextRetryAt"] is None
    records = api.attempts(stream, sink["id"])["data"]
    assert [(a["outcome"], a["statusCode"]) for a in records] == [
        ("success", 200),
        ("retrying", 429),
        ("retrying", 503),
    ]
    assert "Retry-After: 1s" in records[1]["error"]


def test_retry_after_beyond_the_cap_is_capped(api: Api, receiver_factory, workers: Workers) -> None:
    receiver: Receiver = receiver_factory([Answer(503, headers={"Retry-After": "3600"})])
    workers.start(retry_schedule=DEFAULT_SCHEDULE, delivery_max_retry_after="1s")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(2))

    retrying = api.wait_status(stream, sink["id"], "retrying", timeout=10)
    first = receiver.settle()[0]
    wait = _ms(retrying["nextRetryAt"]) - time.time() * 1000
    assert wait < 1100, f"Retry-After: 3600 not capped at 1 s ({wait} ms left)"
    receiver.wait_accepted(2, timeout=10)
    assert receiver.settle()[-1].at - first.at < 4.0
    api.wait_status(stream, sink["id"], "enabled", timeout=5)


def test_failures_follow_the_exponential_schedule_and_throttling_spares_it(
    api: Api, receiver_factory, workers: Workers
) -> None:
    """No Retry-After: waits of ~1 s then ~2 s (jittered +-20%); the Retry-After
    answers between them wait exactly what they say and do not advance the
    schedule (else the wait after the last 503 would be ~8 s)."""
    throttled = Answer(429, headers={"Retry-After": "1"})
    receiver: Receiver = receiver_factory([502, throttled, throttled, 503, 200])
    workers.start(retry_schedule=DEFAULT_SCHEDULE)
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(4))

    seen: set[str] = set()

    def delivered() -> bool:
        state = api.get_sink(stream, sink["id"])
        if state["nextRetryAt"]:
            seen.add(state["nextRetryAt"])
        return len(receiver.accepted_spans()) == 4

    wait_until(delivered, 30, "delivery after the outage", interval=0.02)
    assert [x.answer.status for x in receiver.settle()] == [502, 429, 429, 503, 200]
    assert receiver.accepted_seqs() == [0, 1, 2, 3]
    records = api.attempts(stream, sink["id"])["data"][::-1]  # oldest first
    assert [a["outcome"] for a in records] == ["retrying"] * 4 + ["success"]
    failed_at = [_ms(a["timestamp"]) for a in records[:4]] + [float("inf")]
    dues = sorted(_ms(d) for d in seen)
    waits = []
    for start, end in zip(failed_at, failed_at[1:], strict=False):
        due = [d for d in dues if start <= d < end + 50]
        assert due, (start, dues)
        waits.append((due[0] - start) / 1000)
    assert 0.75 <= waits[0] <= 1.25, waits  # 1st failure: ~1 s
    assert 0.95 <= waits[1] <= 1.05 and 0.95 <= waits[2] <= 1.05, waits  # Retry-After: 1
    assert 1.55 <= waits[3] <= 2.45, waits  # 2nd counted failure: ~2 s
    assert api.wait_status(stream, sink["id"], "enabled", timeout=5)["failureReason"] is None


def test_failing_for_max_elapsed_disables_and_keeps_the_events(
    api: Api, receiver_factory, workers: Workers, redis_client: redis.Redis
) -> None:
    receiver: Receiver = receiver_factory(default=Answer(503, "down for maintenance"))
    workers.start(retry_schedule=DEFAULT_SCHEDULE, retry_max_elapsed="1500ms")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(3))

    disabled = api.wait_status(stream, sink["id"], "disabled", timeout=15)
    reason = disabled["failureReason"]
    assert "STREAMSINK_RETRY_MAX_ELAPSED=1500ms" in reason, reason
    assert "without a success" in reason and "503" in reason, reason
    assert disabled["currentIterator"] == sink["currentIterator"]  # events kept
    assert len(api.log_ids(stream)) == 3
    tries = receiver.settle()
    assert 2 <= len(tries) <= 4
    assert tries[-1].at - tries[0].at >= 1.4  # the last try is at the limit, not before
    assert not redis_client.exists(f"ss:retries:{sink['id']}")

    receiver.default = Answer(200)
    api.force_retry(stream, sink["id"])
    receiver.wait_accepted(3, timeout=10)
    assert receiver.accepted_seqs() == [0, 1, 2]
    api.wait_status(stream, sink["id"], "enabled", timeout=5)
