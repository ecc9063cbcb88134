"""skip, force-retry and the attempt log on a running engine."""

from __future__ import annotations

import time
from datetime import datetime

from streamsink.storage import eventlog as event_log
from tests.helpers.receiver_server import Answer

from .conftest import Api, Receiver, Workers, wait_until

POISON_HANDLER = """
function handler(input) {
  return {
    spans: input.events.map(function (e) {
      if (e.payload.poison) { throw new Error("cannot map event " + e.payload.seq); }
      return { name: "ok", attributes: { seq: e.payload.seq } };
    })
  };
}
"""


def test_skip_moves_past_a_poison_event_and_resumes(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url, code=POISON_HANDLER, batchSize=1)
    events = [("e", f'{{"seq": {i}, "poison": {"true" if i == 2 else "false"}}}') for i in range(5)]
    api.post(stream, events)
    ids = api.log_ids(stream)

    disabled = api.wait_status(stream, sink["id"], "disabled", timeout=10)
    assert "cannot map event 2" in disabled["failureReason"], disabled["failureReason"]
    assert disabled["currentIterator"] == ids[1]  # 0 and 1 went out
    assert receiver.accepted_seqs() == [0, 1]
    failed = api.attempts(stream, sink["id"])["data"][0]
    assert failed["outcome"] == "failed" and failed["firstEventId"] == ids[2]

    skipped = api.skip(stream, sink["id"], failed["lastEventId"])
    assert skipped["status"] == "enabled" and skipped["currentIterator"] == ids[2]
    receiver.wait_accepted(4, timeout=10)
    assert receiver.accepted_seqs() == [0, 1, 3, 4]
    wait_until(lambda: api.get_sink(stream, sink["id"])["currentIterator"] == ids[4], 5, "cursor")

    # Skipping backwards replays: the cursor is the user's to move.
    api.skip(stream, sink["id"], ids[2])
    receiver.wait_accepted(6, timeout=10)
    assert receiver.accepted_seqs() == [0, 1, 3, 4, 3, 4]


def test_force_retry_retries_a_retrying_sink_now(
    api: Api, receiver_factory, workers: Workers
) -> None:
    receiver: Receiver = receiver_factory(default=Answer(503, "down"))
    workers.start(retry_schedule="0,1s,60s,60s")
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(3))

    # 503, then after ~1 s 503 again: now the next retry is a minute away.
    assert receiver.wait_for(2, timeout=10)
    retrying = wait_until(
        lambda: (
            (s := api.get_sink(stream, sink["id"]))["status"] == "retrying"
            and s["nextRetryAt"]
            and datetime.fromisoformat(s["nextRetryAt"]).timestamp() > time.time() + 30
            and s
        ),
        5,
        "a retry a minute away",
    )
    assert "HTTP 503" in retrying["failureReason"]

    receiver.default = Answer(200)
    forced_at = time.monotonic()
    api.force_retry(stream, sink["id"])
    receiver.wait_accepted(3, timeout=10)
    assert receiver.settle()[-1].at - forced_at < 3.0
    assert receiver.accepted_seqs() == [0, 1, 2]
    enabled = api.wait_status(stream, sink["id"], "enabled", timeout=5)
    assert enabled["nextRetryAt"] is None and enabled["failureReason"] is None

    page = api.attempts(stream, sink["id"])
    rows = page["data"]
    assert [(a["outcome"], a["statusCode"]) for a in rows] == [
        ("success", 200),
        ("retrying", 503),
        ("retrying", 503),
    ]
    stamps = [a["timestamp"] for a in rows]
    assert stamps == sorted(stamps, reverse=True)  # newest first
    assert rows[0]["spansSent"] == 3 and rows[1]["responseExcerpt"] == "down"
    # Svix's fields: the batch's event count is recorded, a retry is a "fail"
    assert [(a["numEvents"], a["status"], a["statusText"]) for a in rows] == [
        (3, 0, "success"),
        (3, 2, "fail"),
        (3, 2, "fail"),
    ]
    assert all(a["sinkId"] == sink["id"] for a in rows)
    assert page["done"] is True
    # Paginated: one at a time, newest first.
    one = api.attempts(stream, sink["id"], limit=1)
    two = api.attempts(stream, sink["id"], limit=1, iterator=one["iterator"])
    assert [one["data"][0]["id"], two["data"][0]["id"]] == [rows[0]["id"], rows[1]["id"]]


def test_partial_success_is_recorded(api: Api, receiver_factory, workers: Workers) -> None:
    partial = {"partialSuccess": {"rejectedSpans": "1", "errorMessage": "span 1: bad attribute"}}
    receiver: Receiver = receiver_factory([Answer(200, partial, content_type="application/json")])
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(3))
    receiver.wait_accepted(3, timeout=10)
    attempt = wait_until(lambda: api.attempts(stream, sink["id"])["data"], 5, "an attempt")[0]
    assert attempt["outcome"] == "success" and attempt["rejectedSpans"] == 1
    assert attempt["spansSent"] == 3 and "bad attribute" in attempt["responseExcerpt"]
    state = api.get_sink(stream, sink["id"])
    assert state["status"] == "enabled"
    assert state["currentIterator"] == api.log_ids(stream)[-1]  # rejected spans: not retried


def test_skip_past_the_end_is_refused_and_later_events_still_arrive(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    """An iterator past the log's end would hold the cursor in the future and
    silently skip every event posted until then: 422, the cursor stays."""
    workers.start()
    stream = api.stream()
    sink = api.sink(stream, receiver.traces_url)
    api.post_seqs(stream, range(2))
    receiver.wait_accepted(2, timeout=10)
    last = api.log_ids(stream)[-1]
    wait_until(lambda: api.get_sink(stream, sink["id"])["currentIterator"] == last, 5, "cursor")

    path = f"/api/v1/stream/{stream}/sink/{sink['id']}/skip"
    future = "9999999999999-0"
    for kwargs, loc in (
        ({"json": {"iterator": future}}, ["body", "iterator"]),
        ({"params": {"iterator": future}}, ["query", "iterator"]),
    ):
        r = api.http.post(path, **kwargs)
        assert r.status_code == 422, r.text
        error = r.json()["detail"][0]
        assert error["loc"] == loc and future in error["msg"] and last in error["msg"]
    # An id before the end that names no event is refused too.
    missing = event_log.prev_id(api.log_ids(stream)[0])
    r = api.http.post(path, params={"iterator": missing})
    assert r.status_code == 422 and "no event" in r.json()["detail"][0]["msg"], r.text

    state = api.get_sink(stream, sink["id"])
    assert state["status"] == "enabled" and state["currentIterator"] == last
    api.post_seqs(stream, range(2, 5))
    receiver.wait_accepted(5, timeout=10)
    assert receiver.accepted_seqs() == [0, 1, 2, 3, 4]

    # The current end (skip everything pending) and 0-0 (replay) are positions;
    # the iterator may come in the query (as Svix sends it) or the body.
    end = api.log_ids(stream)[-1]
    moved = api.http.post(path, params={"iterator": end})
    assert moved.status_code == 202 and moved.json()["currentIterator"] == end, moved.text
    # (the answer's currentIterator may already be past 0-0: the worker is fast)
    replay = api.http.post(path, params={"iterator": "0-0"}, json={"iterator": "0-0"})
    assert replay.status_code == 202, replay.text
    receiver.wait_accepted(10, timeout=10)
    assert receiver.accepted_seqs() == [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
