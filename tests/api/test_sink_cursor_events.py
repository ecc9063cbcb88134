"""``last-acked-event`` and ``next-event`` follow a sink's cursor and its
``eventTypes``; a sink disabled by a user is told from one disabled by a
failure (force-retry 409 vs 204)."""

from __future__ import annotations

from typing import Any

import redis
from fastapi.testclient import TestClient

from streamsink.storage import eventlog as event_log
from streamsink.storage import keys, sink_position
from streamsink.storage import sinks as store_sinks

from .util import sink_body

S = "/api/v1/stream/orders/sink"


def _post(client: TestClient, events: list[tuple[str, str]]) -> None:
    body = {"events": [{"eventType": t, "payload": p} for t, p in events]}
    assert client.post("/api/v1/stream/orders/events", json=body).status_code == 202


def _skip(client: TestClient, sink: str, iterator: str) -> None:
    r = client.post(f"{S}/{sink}/skip", params={"iterator": iterator})
    assert r.status_code == 202, r.text


def test_last_acked_and_next_event_follow_the_cursor(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    _post(client, [("paid", "before")])  # before the sink: not owed
    sink = client.post(S, json=sink_body(uid="paid", eventTypes=["paid"])).json()["id"]
    for path in ("last-acked-event", "next-event"):
        r = client.get(f"{S}/paid/{path}")  # by uid too
        if path == "next-event":
            assert r.status_code == 404 and r.json()["code"] == "not_found"
            assert "owes no event" in r.json()["detail"]
    _post(client, [("other", "o1"), ("paid", "p1"), ("other", "o2"), ("paid", "p2")])
    ids = event_log.latest(redis_client, stream["id"], 10)[::-1]
    assert [e.payload for e in ids] == ["before", "o1", "p1", "o2", "p2"]

    # the last one it passed is, so far, before its creation: "before"
    acked = client.get(f"{S}/{sink}/last-acked-event").json()
    assert acked["payload"] == "before" and acked["id"] == ids[0].id
    nxt = client.get(f"{S}/{sink}/next-event").json()
    assert nxt == {
        "id": ids[2].id,
        "eventType": "paid",
        "payload": "p1",
        "timestamp": nxt["timestamp"],
    }
    assert nxt["timestamp"].startswith("20")

    _skip(client, sink, ids[3].id)  # past p1 and onto o2 (not selected)
    assert client.get(f"{S}/{sink}/last-acked-event").json()["payload"] == "p1"
    assert client.get(f"{S}/{sink}/next-event").json()["payload"] == "p2"
    _skip(client, sink, ids[4].id)
    assert client.get(f"{S}/{sink}/last-acked-event").json()["payload"] == "p2"
    assert client.get(f"{S}/{sink}/next-event").status_code == 404
    _skip(client, sink, "0-0")
    r = client.get(f"{S}/{sink}/last-acked-event")
    assert r.status_code == 404 and "currentIterator is 0-0" in r.json()["detail"]
    assert client.get(f"{S}/{sink}/next-event").json()["payload"] == "before"
    assert client.get("/api/v1/stream/orders/sink/nope/next-event").status_code == 404
    assert client.get("/api/v1/stream/nope/sink/paid/last-acked-event").status_code == 404


def test_scans_are_bounded_and_walk_chunks(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    """A filter that matches one event in thousands: found across chunks, and a
    bound on the scan stops early (an answer, not a full read of the log)."""
    sink = client.post(S, json=sink_body(eventTypes=["rare"])).json()["id"]
    _post(client, [("rare", "first")])
    for _ in range(3):
        _post(client, [("noise", str(i)) for i in range(1000)])
    _post(client, [("rare", "second")])
    record = store_sinks.get_sink(redis_client, sink)
    assert record is not None
    assert sink_position.next_owed(redis_client, record).payload == "first"  # type: ignore[union-attr]
    _skip(client, sink, client.get(f"{S}/{sink}/next-event").json()["id"])
    assert client.get(f"{S}/{sink}/next-event").json()["payload"] == "second"
    record = store_sinks.get_sink(redis_client, sink)
    assert record is not None
    assert sink_position.next_owed(redis_client, record, max_scan=500) is None
    last = event_log.last_id(redis_client, stream["id"])
    _skip(client, sink, last)
    assert client.get(f"{S}/{sink}/last-acked-event").json()["payload"] == "second"
    _skip(client, sink, event_log.latest(redis_client, stream["id"], 2)[1].id)  # last noise
    assert client.get(f"{S}/{sink}/last-acked-event").json()["payload"] == "first"
    record = store_sinks.get_sink(redis_client, sink)
    assert record is not None
    assert sink_position.last_passed(redis_client, record, max_scan=500) is None


def _fail(redis_client: redis.Redis, sink_id: str, status: str) -> None:
    """What the delivery engine records for a failing sink."""
    store_sinks.update_sink_state(
        redis_client,
        sink_id,
        status=status,
        failure_reason="HTTP 503 from the collector",
        next_retry_at=None if status == "disabled" else 4_000_000_000_000,
    )
    store_sinks.note_failure(redis_client, sink_id, count=True, now_ms=1)


def test_a_user_disable_is_told_from_a_failure(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    sink = client.post(S, json=sink_body(uid="main")).json()["id"]
    _fail(redis_client, sink, "retrying")
    out = client.patch(f"{S}/{sink}", json={"status": "disabled"}).json()
    assert out["status"] == "disabled" and out["failureReason"] is None
    assert out["nextRetryAt"] is None and not redis_client.exists(keys.retries(sink))
    r = client.post(f"{S}/{sink}/force-retry")
    assert r.status_code == 409 and "disabled by a user" in r.json()["detail"]
    assert client.get(f"{S}/{sink}").json()["status"] == "disabled"

    # the same through PUT
    client.patch(f"{S}/{sink}", json={"status": "enabled"})
    _fail(redis_client, sink, "retrying")
    out = client.put(f"{S}/main", json=sink_body(status="disabled")).json()
    assert out["status"] == "disabled" and out["failureReason"] is None
    assert client.post(f"{S}/{sink}/force-retry").status_code == 409

    # disabled by a failure: force-retry retries it, and a user's repeated
    # "disabled" on it changes nothing
    client.patch(f"{S}/{sink}", json={"status": "enabled"})
    _fail(redis_client, sink, "disabled")
    out = client.patch(f"{S}/{sink}", json={"status": "disabled"}).json()
    assert out["failureReason"] == "HTTP 503 from the collector"
    assert client.post(f"{S}/{sink}/force-retry").status_code == 204
    assert client.get(f"{S}/{sink}").json()["status"] == "retrying"
