"""Scenarios where a sink misbehaves: a receiver down for a while, receivers
that answer slowly or drip their answer, handlers that loop, allocate without
end or throw on one poison event."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx

from streamsink.storage import eventlog
from tools.devstack import Stack, wait_until
from tools.faults.harness import (
    FAST_ENV,
    Producer,
    Receiver,
    Result,
    add_sink,
    setup_sink,
    signature_checks,
    trust_sink,
    wait_delivered,
)


def _statuses(client: httpx.Client, stream: str, sink: str, seen: list[str]) -> dict[str, Any]:
    state = client.get(f"/stream/{stream}/sink/{sink}").json()
    if not seen or seen[-1] != state["status"]:
        seen.append(state["status"])
    return state


def receiver_outage(outage: float, retry_schedule: str, events: int = 200) -> Result:
    """The receiver refuses connections for ``outage`` s, then comes up: every
    event arrives, in order, and the sink went ``retrying`` then ``enabled``."""
    result = Result("receiver_down")
    receiver = Receiver()  # not listening yet: connection refused
    started = time.monotonic()
    env = {**FAST_ENV, "STREAMSINK_RETRY_SCHEDULE": retry_schedule}
    seen: list[str] = []
    with Stack(workers=1, env=env) as stack, stack.http(timeout=10) as client:
        stack.wait_workers_registered()
        stream, sink = setup_sink(stack, receiver.url, batchSize=20)
        trust_sink(stack, receiver, stream, sink)
        producer = Producer(stack, stream, interval=0.02, per_request=5, max_requests=events // 5)
        producer.run()  # in this thread: all events posted
        down_until = time.monotonic() + outage
        while time.monotonic() < down_until:
            _statuses(client, stream, sink, seen)
            time.sleep(0.2)
        receiver.up()
        up = time.monotonic()
        took = wait_delivered(receiver, producer.acked, outage + 60)
        wait_until(lambda: _statuses(client, stream, sink, seen)["status"] == "enabled", 10)
        final = _statuses(client, stream, sink, seen)
    receiver.stop()
    result.count(producer.acked, receiver.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {
        "outage_s": outage,
        "statuses": seen,
        "delivered_after_up_s": round(took, 1),
        "caught_up_s": round(time.monotonic() - up, 1),
    }
    signature_checks(result, receiver)
    result.check(result.lost == 0, "events lost")
    result.check(result.in_order, "out of order")
    result.check("retrying" in seen, "never retrying")
    result.check(final["status"] == "enabled", f"ended {final['status']}")
    result.passed = not result.errors
    return result


def slow_receivers(delay: float, drip: float, events: int = 100) -> Result:
    """One sink's receiver answers after ``delay`` s (past the read timeout),
    another drips its answer a byte every ``drip`` s; a third, healthy sink on
    the same stream gets every event without waiting for them."""
    result = Result("slow_receivers")
    slow = Receiver(delay=delay).up()
    dripping = Receiver(drip=drip).up()
    fast = Receiver().up()
    started = time.monotonic()
    with Stack(workers=1, env=FAST_ENV) as stack, stack.http(timeout=10) as client:
        stack.wait_workers_registered()
        stream, slow_sink = setup_sink(stack, slow.url)
        add_sink(client, stream, dripping.url)
        add_sink(client, stream, fast.url)
        producer = Producer(stack, stream, interval=0.05, per_request=5, max_requests=events // 5)
        posted = time.monotonic()
        producer.run()
        fast_took = wait_delivered(fast, producer.acked, 30)
        fast_done = time.monotonic() - posted

        def timed_out() -> list[dict[str, Any]]:
            path = f"/stream/{stream}/sink/{slow_sink}/attempt"
            data = client.get(path).json()["data"]
            return [a for a in data if "timed out" in (a["error"] or "")]

        with contextlib.suppress(TimeoutError):
            wait_until(timed_out, 20, 0.2, "a timed-out attempt")
        timeouts = timed_out()
        slow_state = client.get(f"/stream/{stream}/sink/{slow_sink}").json()
        for r in (slow, dripping, fast):
            r.stop()  # ends the deliveries in flight: the worker stops at once
    result.count(producer.acked, fast.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {
        "slow_delay_s": delay,
        "fast_sink_done_s": round(fast_done, 1),
        "slow_sink_status": slow_state["status"],
        "slow_sink_timeouts": len(timeouts),
        "slow_sink_error": timeouts[0]["error"] if timeouts else None,
        "dripping_sink_spans": len(dripping.snapshot()),
    }
    result.check(result.lost == 0, "events lost on the healthy sink")
    result.check(fast_took < 10, f"healthy sink took {fast_took:.1f} s after the last post")
    result.check(bool(timeouts), "the slow sink's read timeout did not fire")
    result.passed = not result.errors
    return result


LOOP = "function handler(input) { while (true) {} }"
ALLOCATE = (
    "function handler(input) { var a = []; while (true) { a.push(new Array(1e5).fill(1)); } }"
)
POISON = """
function handler(input) {
  return {spans: input.events.map(function (e) {
    if (e.payload.poison) { throw new Error("poison event " + e.payload.seq); }
    return {name: "e", startTime: "2024-01-01T00:00:00Z", endTime: "2024-01-01T00:00:01Z",
            attributes: {seq: e.payload.seq}};
  })};
}
"""
MARKERS = {"loop": "did not finish within", "allocate": "memory limit", "poison": "poison event"}


def bad_handlers(events: int = 20) -> Result:
    """Handlers that loop forever, allocate without end, or throw on one poison
    event: each sink is disabled with a clear failureReason, the worker stays
    up, and ``skip`` past the bad events resumes the sink."""
    result = Result("bad_handlers")
    started = time.monotonic()
    good = Receiver().up()
    reasons: dict[str, str] = {}
    # The allocating handler reaches the memory limit in ~0.15 s of CPU; a 3 s
    # time limit leaves it room on a loaded machine (the suite runs on parallel
    # workers), else the time limit would stop it first.
    env = {**FAST_ENV, "STREAMSINK_JS_TIMEOUT_MS": "3000"}
    with Stack(workers=1, env=env) as stack, stack.http(timeout=30) as client:
        stack.wait_workers_registered()
        stream = client.post("/stream", json={"name": "bad", "uid": "bad"}).json()["id"]
        sinks = {
            name: add_sink(client, stream, good.url, code=code, batchSize=events)
            for name, code in (("loop", LOOP), ("allocate", ALLOCATE), ("poison", POISON))
        }
        body = {
            "events": [
                {"eventType": "e", "payload": f'{{"seq": {i}, "poison": {str(i == 5).lower()}}}'}
                for i in range(events)
            ]
        }
        client.post(f"/stream/{stream}/events", json=body).raise_for_status()
        for name, sink in sinks.items():
            wait_until(
                lambda s=sink: (
                    client.get(f"/stream/{stream}/sink/{s}").json()["status"] == "disabled"
                ),
                60,
                what=f"{name} sink disabled",
            )
            reasons[name] = client.get(f"/stream/{stream}/sink/{sink}").json()["failureReason"]
            result.check(MARKERS[name] in (reasons[name] or ""), f"{name}: {reasons[name]!r}")
        alive = all(w.poll() is None for w in stack.workers)
        # Skip the poison sink past the poison event: the rest is delivered.
        ids = [e.id for e in eventlog.entries_after(stack.redis_client(), stream, "0-0", events)]
        client.post(
            f"/stream/{stream}/sink/{sinks['poison']}/skip", json={"iterator": ids[5]}
        ).raise_for_status()
        after = list(range(6, events))
        took = wait_delivered(good, after, 30)
        resumed = client.get(f"/stream/{stream}/sink/{sinks['poison']}").json()["status"]
    good.stop()
    result.count(after, good.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {
        "failure_reasons": reasons,
        "resumed_after_skip_s": round(took, 1),
        "poison_sink_status": resumed,
    }
    result.check(alive, "the worker died")
    result.check(result.lost == 0, "events after the poison event lost")
    result.check(resumed == "enabled", f"poison sink {resumed} after skip")
    result.passed = not result.errors
    return result
