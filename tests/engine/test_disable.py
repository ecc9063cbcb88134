"""A permanent answer (400) disables the sink with a readable reason; its
events wait, and re-enabling delivers every one of them from the cursor."""

from __future__ import annotations

import time

from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver, Workers


def test_400_disables_then_enable_delivers_held_events(
    api: Api, receiver_factory, workers: Workers
) -> None:
    bad = Answer(400, "span 0: attribute 'seq' must be a string", content_type="text/plain")
    receiver: Receiver = receiver_factory(default=bad)
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, batchSize=4)
    api.post_seqs(stream, range(4))

    disabled = api.wait_status(stream, sink["id"], "disabled", timeout=10)
    reason = disabled["failureReason"]
    assert "HTTP 400" in reason and "attribute 'seq' must be a string" in reason, reason
    assert disabled["nextRetryAt"] is None
    assert disabled["currentIterator"] == sink["currentIterator"]  # nothing passed
    assert len(receiver.settle()) == 1  # permanent: not retried

    # Events keep coming while the sink is disabled: they are kept, not sent.
    api.post_seqs(stream, range(4, 10))
    time.sleep(1.0)
    assert len(receiver.settle()) == 1
    attempt = api.attempts(stream, sink["id"])["data"][0]
    assert attempt["outcome"] == "failed" and attempt["statusCode"] == 400
    assert "must be a string" in attempt["responseExcerpt"]

    receiver.default = Answer(200)
    enabled = api.patch_sink(stream, sink["id"], status="enabled")
    assert enabled["status"] == "enabled" and enabled["failureReason"] is None
    receiver.wait_accepted(10, timeout=10)
    time.sleep(0.3)
    assert receiver.accepted_seqs() == list(range(10))
    after = api.get_sink(stream, sink["id"])
    assert after["status"] == "enabled"
    assert after["currentIterator"] == api.log_ids(stream)[-1]


def test_user_disabled_sink_keeps_its_cursor(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(3))
    receiver.wait_accepted(3, timeout=10)
    api.patch_sink(stream, sink["id"], status="disabled")
    api.post_seqs(stream, range(3, 6))
    time.sleep(1.0)
    assert receiver.accepted_seqs() == [0, 1, 2]
    api.patch_sink(stream, sink["id"], status="enabled")
    receiver.wait_accepted(6, timeout=10)
    assert receiver.accepted_seqs() == list(range(6))


DEEP_HANDLER = """
function handler(input) {
  var o = {}, c = o;
  for (var i = 0; i < 5000; i++) { c.a = {}; c = c.a; }
  return { spans: input.events.map(function () { return { name: "deep", attributes: o }; }) };
}
"""


def test_unexpected_transform_failure_disables_instead_of_spinning(
    api: Api, receiver_factory, workers: Workers
) -> None:
    """An output the pipeline chokes on (here: nesting too deep to decode) is a
    transformation failure like any other: the sink is disabled with the
    reason, not re-run in a hot loop."""
    never: Receiver = receiver_factory()
    healthy: Receiver = receiver_factory()
    workers.start()
    stream = api.stream()
    deep = api.sink(stream, never.traces_url, code=DEEP_HANDLER)
    api.sink(stream, healthy.traces_url)
    api.post_seqs(stream, range(2))

    disabled = api.wait_status(stream, deep["id"], "disabled", timeout=10)
    assert "transformation failed" in disabled["failureReason"], disabled["failureReason"]
    assert disabled["currentIterator"] == deep["currentIterator"]
    time.sleep(1.0)
    assert len(api.attempts(stream, deep["id"])["data"]) == 1
    assert never.settle() == []
    healthy.wait_accepted(2, timeout=5)
