"""One slow or failing sink never delays another (docs/architecture.md, guarantees): a receiver
that hangs, or a handler that loops forever, holds one delivery thread only."""

from __future__ import annotations

import time

from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver, Workers, wait_until

LOOP_FOREVER = "function handler(input) {\n  while (true) {}\n}\n"


def _assert_prompt(api: Api, stream: str, healthy: Receiver, rounds: int = 3) -> None:
    """Each of ``rounds`` posts reaches ``healthy`` within 2 s."""
    for n in range(rounds):
        seen = len(healthy.accepted_spans())
        posted = time.monotonic()
        api.post_seqs(stream, range(n, n + 1))
        healthy.wait_accepted(seen + 1, timeout=10)
        took = healthy.settle()[-1].at - posted
        assert took < 2.0, f"round {n}: the healthy sink waited {took:.2f} s"
        time.sleep(0.3)


def test_hung_receiver_does_not_delay_other_sinks(
    api: Api, receiver_factory, workers: Workers
) -> None:
    hung: Receiver = receiver_factory(default=Answer(200, delay=30))
    healthy: Receiver = receiver_factory()
    workers.start(delivery_read_timeout="3")
    stream = api.stream()
    stuck = api.sink(stream, hung.traces_url, batchSize=1)
    api.sink(stream, healthy.traces_url, batchSize=1)

    _assert_prompt(api, stream, healthy)
    assert hung.wait_for(1, timeout=5)
    assert len(hung.settle()) == 1  # still the first request, in flight
    # The hung sink times out and retries; the healthy one was never held up.
    retrying = api.wait_status(stream, stuck["id"], "retrying", timeout=10)
    assert "timed out" in retrying["failureReason"]


def test_looping_handler_does_not_delay_other_sinks(
    api: Api, receiver_factory, workers: Workers
) -> None:
    never: Receiver = receiver_factory()
    healthy: Receiver = receiver_factory()
    workers.start(js_timeout_ms="4000")
    stream = api.stream()
    looping = api.sink(stream, never.traces_url, code=LOOP_FOREVER)
    api.sink(stream, healthy.traces_url)

    started = time.monotonic()
    _assert_prompt(api, stream, healthy)
    assert time.monotonic() - started < 4.0  # all while the handler still looped
    disabled = api.wait_status(stream, looping["id"], "disabled", timeout=10)
    assert "did not finish within 4000 ms" in disabled["failureReason"]
    assert never.settle() == []
    # The looping sink's isolate was thrown away; fixed code delivers its events.
    api.transformation(stream, looping["id"], None)
    api.patch_sink(stream, looping["id"], status="enabled")
    wait_until(lambda: len(never.accepted_spans()) == 3, 10, "held events after the fix")
    assert never.accepted_seqs() == [0, 1, 2]
