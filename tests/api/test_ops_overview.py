"""GET /api/v1/ops/overview: streams and sinks failing first, lag, the last
hour per minute, queues and workers (real Redis; a real worker for the end
to end case)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.storage import keys, metrics, overview
from streamsink.storage.sinks import update_sink_state

from .util import events_body, sink_body

URL = "/api/v1/ops/overview"


def _stream(client: TestClient, uid: str) -> str:
    r = client.post("/api/v1/stream", json={"name": uid, "uid": uid})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _sink(client: TestClient, stream: str, **fields: Any) -> dict[str, Any]:
    r = client.post(f"/api/v1/stream/{stream}/sink", json=sink_body(**fields))
    assert r.status_code == 201, r.text
    return r.json()


def _post(client: TestClient, stream: str, n: int, event_type: str = "order.created") -> None:
    r = client.post(f"/api/v1/stream/{stream}/events", json=events_body(n, event_type))
    assert r.status_code == 202, r.text


def _overview(client: TestClient, **params: Any) -> dict[str, Any]:
    r = client.get(URL, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_overview_needs_the_admin_token(client: TestClient) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        r = client.get(URL, headers=headers)
        assert r.status_code == 401
        assert r.json()["code"] == "authentication_failed"


def test_series_counts_events_per_minute_from_both_ingest_paths(
    client: TestClient, redis_client: redis.Redis
) -> None:
    stream = _stream(client, "orders")
    _post(client, stream, 7)  # the fast lane (Lua script)
    body = events_body(3, stream={"name": "new"})  # the route that creates the stream
    assert client.post("/api/v1/stream/new-one/events", json=body).status_code == 202

    series = _overview(client)["series"]
    assert series["stepSecs"] == 60
    points = series["points"]
    assert len(points) == 60
    assert sum(p["eventsIn"] for p in points) == 10
    last = datetime.fromisoformat(points[-1]["t"])
    now = datetime.now(UTC)
    assert 0 <= (now - last).total_seconds() < 120  # the current (or just ended) minute
    assert [datetime.fromisoformat(p["t"]) for p in points] == sorted(
        datetime.fromisoformat(p["t"]) for p in points
    )
    assert len(_overview(client, minutes=5)["series"]["points"]) == 5

    buckets = [k for k in redis_client.keys("ss:metrics:m:*")]
    assert buckets, "no per-minute bucket written"
    for key in buckets:  # bounded: every bucket expires
        assert 0 < redis_client.ttl(key) <= keys.METRICS_MINUTE_TTL_SECS


def test_worker_counters_fill_the_minute_buckets(
    client: TestClient, redis_client: redis.Redis
) -> None:
    pipe = redis_client.pipeline()
    metrics.inc(pipe, "spans_delivered", 5, sink="sink_a")
    metrics.inc(pipe, "spans_delivered", 2, sink="sink_b")
    metrics.inc(pipe, "batches_delivered", 2, sink="sink_a")
    metrics.inc(pipe, "delivery_failures", 1, **{"class": "retryable"})
    metrics.inc(pipe, "delivery_failures", 1, **{"class": "permanent"})
    metrics.inc(pipe, "retries")  # not a series: no bucket field
    pipe.execute()
    points = _overview(client)["series"]["points"]
    assert sum(p["spansOut"] for p in points) == 7
    assert sum(p["batchesOut"] for p in points) == 2
    assert sum(p["failures"] for p in points) == 2
    assert sum(p["eventsIn"] for p in points) == 0


def test_series_reads_old_minutes_and_skips_missing_ones(redis_client: redis.Redis) -> None:
    now = 1_800_000_000.0
    minute = int(now) // 60
    redis_client.hset(keys.metrics_minute(minute - 3), mapping={"events_ingested": 4})
    redis_client.hset(keys.metrics_minute(minute - 60), mapping={"events_ingested": 99})
    points = metrics.series(redis_client, 60, now=now)
    assert [p["minute"] for p in points] == list(range(minute - 59, minute + 1))
    assert [p["events_ingested"] for p in points if p["events_ingested"]] == [4]


def test_failing_sinks_come_first_with_reason_retry_and_lag(
    client: TestClient, redis_client: redis.Redis
) -> None:
    healthy = _stream(client, "healthy")
    _sink(client, healthy, uid="fine")
    broken = _stream(client, "broken")
    ok = _sink(client, broken, uid="ok")
    bad = _sink(client, broken, uid="bad", eventTypes=["order.created"])
    quiet = _stream(client, "quiet")
    off = _sink(client, quiet, uid="off")
    dead = _sink(client, quiet, uid="dead")
    _post(client, broken, 3)  # taken by bad's filter
    _post(client, broken, 2, "order.paid")  # not taken by bad
    retry_at = int(time.time() * 1000) + 30_000
    update_sink_state(
        redis_client,
        bad["id"],
        status="retrying",
        failure_reason="connection refused",
        next_retry_at=retry_at,
    )
    update_sink_state(redis_client, dead["id"], status="disabled", failure_reason="HTTP 400")
    client.patch(f"/api/v1/stream/{quiet}/sink/{off['id']}", json={"status": "disabled"})

    out = _overview(client)
    assert out["totals"] == {
        "streams": 3,
        "sinks": 5,
        "sinksByStatus": {"enabled": 2, "disabled": 2, "paused": 0, "retrying": 1},
        "failingSinks": 2,
        "complete": True,
    }
    failing = out["failingSinks"]
    assert [s["id"] for s in failing] == [bad["id"], dead["id"]]  # creation order
    first = failing[0]
    assert first["status"] == "retrying" and first["failing"] is True
    assert first["failureReason"] == "connection refused"
    assert datetime.fromisoformat(first["nextRetryAt"]).timestamp() == retry_at / 1000
    assert first["lag"]["events"] == 3 and first["lag"]["more"] is False
    assert first["lag"]["oldestAt"] is not None
    assert [s["streamName"] for s in failing] == ["broken", "quiet"]

    streams = out["streams"]["data"]
    assert [s["uid"] for s in streams] == ["broken", "quiet", "healthy"]
    assert [s["failingSinks"] for s in streams] == [1, 1, 0]
    assert [s["uid"] for s in streams[0]["sinks"]] == ["bad", "ok"]
    assert [s["uid"] for s in streams[1]["sinks"]] == ["dead", "off"]  # failing, then off
    assert streams[1]["sinks"][1]["failing"] is False  # disabled by a person
    by_id = {s["id"]: s for st in streams for s in st["sinks"]}
    assert by_id[ok["id"]]["lag"]["events"] == 5  # no filter: every event waits
    assert by_id[off["id"]]["lag"] == {"events": 0, "more": False, "oldestAt": None}
    assert out["streams"]["done"] is True

    # a failing sink beyond the page is still listed, with its stream's name
    later = _overview(client, limit=1)
    assert [s["uid"] for s in later["streams"]["data"]] == ["healthy"]
    assert [s["streamName"] for s in later["failingSinks"]] == ["broken", "quiet"]


def test_lag_scan_is_capped(
    client: TestClient, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(overview, "LAG_SCAN_CAP", 4)
    stream = _stream(client, "busy")
    sink = _sink(client, stream)
    _post(client, stream, 9)
    lag = _overview(client)["streams"]["data"][0]["sinks"][0]["lag"]
    assert lag["events"] == 4 and lag["more"] is True
    assert sink["id"] == _overview(client)["streams"]["data"][0]["sinks"][0]["id"]


def test_streams_are_paginated_and_the_page_is_capped(client: TestClient) -> None:
    ids = [_stream(client, f"s{i}") for i in range(3)]
    first = _overview(client, limit=2)["streams"]
    assert [s["id"] for s in first["data"]] == ids[:2] and first["done"] is False
    second = _overview(client, limit=2, iterator=first["iterator"])["streams"]
    assert [s["id"] for s in second["data"]] == ids[2:] and second["done"] is True
    assert client.get(URL, params={"limit": 201}).status_code == 422
    assert client.get(URL, params={"minutes": 121}).status_code == 422
    assert client.get(URL, params={"iterator": "!!"}).status_code == 422


def test_sink_url_is_shown_without_credentials(client: TestClient) -> None:
    stream = _stream(client, "creds")
    _sink(client, stream, config={"url": "https://user:secret@collector.example.com/v1/traces"})
    sink = _overview(client)["streams"]["data"][0]["sinks"][0]
    assert sink["url"] == "https://collector.example.com/v1/traces"


def test_queue_depth_and_no_worker(client: TestClient) -> None:
    stream = _stream(client, "q")
    _sink(client, stream)
    _post(client, stream, 2)  # kicks the idle sink: one job, no worker to take it
    out = _overview(client)
    queues = {q["name"]: q for q in out["queues"]}
    assert set(queues) == {"deliver", "deliver-slow"}
    assert queues["deliver"]["queued"] == 1
    assert queues["deliver-slow"] == {
        "name": "deliver-slow",
        "queued": 0,
        "scheduled": 0,
        "started": 0,
    }
    assert out["workers"] == {"alive": 0, "registered": 0, "entries": []}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_real_worker_failing_sink_shows_first(redis_url: str, tmp_path: Any) -> None:
    """End to end: a worker process delivers to a closed port on 127.0.0.1."""
    from streamsink.api.app import create_app
    from streamsink.settings import Settings
    from tests.engine.conftest import TOKEN, Workers, wait_until

    client = redis.Redis.from_url(redis_url)
    app = create_app(Settings(auth_token=TOKEN, redis_url=redis_url), client)
    pool = Workers(redis_url, tmp_path)
    try:
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            pool.start()
            stream = _stream(http, "engine")
            fine = _sink(http, stream, uid="fine", status="disabled")
            url = f"http://127.0.0.1:{_closed_port()}/v1/traces"
            bad = _sink(http, stream, uid="closed", config={"url": url})
            _post(http, stream, 2)

            def failing() -> dict[str, Any] | None:
                out = _overview(http)
                return out if out["failingSinks"] else None

            out = wait_until(failing, 20, "the sink to fail")
            first = out["failingSinks"][0]
            assert first["id"] == bad["id"]
            assert first["failureReason"]
            assert out["streams"]["data"][0]["sinks"][0]["id"] == bad["id"]
            assert out["streams"]["data"][0]["sinks"][1]["id"] == fine["id"]
            assert out["workers"]["alive"] >= 1
            assert out["workers"]["entries"][0]["alive"] is True
            assert first["lastAttempt"]["outcome"] in ("retrying", "failed")
            points = out["series"]["points"]
            assert sum(p["eventsIn"] for p in points) == 2
            assert sum(p["failures"] for p in points) >= 1
    finally:
        pool.stop_all()
        client.close()
        print(pool.logs())


def test_a_stream_without_a_name_is_listed(client: TestClient) -> None:
    r = client.post("/api/v1/stream", json={"name": "", "uid": "unnamed"})
    assert r.status_code == 201, r.text
    listed = _overview(client)["streams"]["data"]
    assert [(s["uid"], s["name"]) for s in listed] == [("unnamed", None)]


def test_a_portal_token_cannot_read_the_overview(client: TestClient) -> None:
    stream = _stream(client, "customer")
    r = client.post(f"/api/v1/auth/stream-portal-access/{stream}", json={})
    assert r.status_code == 200, r.text
    portal = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get(f"/api/v1/stream/{stream}", headers=portal).status_code == 200
    r = client.get(URL, headers=portal)
    assert r.status_code == 403 and r.json()["code"] == "forbidden", r.text
