"""Back-pressure on the events POST, alike in both lanes (the fast lane and the
route): a stream past ``STREAMSINK_STREAM_MAX_BYTES`` answers 429 +
``Retry-After`` + ``{code, detail}`` and stores nothing, while other streams
accept; once its sinks catch up it accepts again. Redis refusing a write for
memory (``maxmemory``, noeviction) is a 503 + ``Retry-After`` in every write path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.settings import Settings
from streamsink.storage import eventlog
from streamsink.storage import sinks as store_sinks
from streamsink.storage.connection import EmbeddedRedis

from .util import AUTH, TOKEN, events_body, sink_body

BUDGET = 20_000
LANES = {"fast": "", "route": "?lane=route"}  # a query string sends it to the route


@pytest.fixture
def small(redis_url: str, redis_client: redis.Redis) -> Iterator[TestClient]:
    settings = Settings(auth_token=TOKEN, redis_url=redis_url, stream_max_bytes=BUDGET)
    app = create_app(settings, redis_client)
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as client:
        yield client


def _stream(client: TestClient, uid: str, *, with_sink: bool = True) -> tuple[str, str | None]:
    r = client.post("/api/v1/stream", json={"name": uid, "uid": uid})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    if not with_sink:
        return sid, None
    r = client.post(f"/api/v1/stream/{sid}/sink", json=sink_body())
    assert r.status_code == 201, r.text
    return sid, r.json()["id"]


def _fill(client: TestClient, sid: str) -> int:
    """POST 20-event batches until the budget refuses one; the events accepted."""
    accepted = 0
    for _ in range(200):
        r = client.post(f"/api/v1/stream/{sid}/events", json=events_body(20))
        if r.status_code != 202:
            assert r.status_code == 429, r.text
            return accepted
        accepted += 20
    raise AssertionError("the budget never refused a POST")


def _refusal(r: httpx.Response, sid: str) -> dict[str, Any]:
    assert r.status_code == 429, r.text
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    assert body["code"] == "stream_over_budget"
    assert sid in body["detail"]
    assert str(BUDGET) in body["detail"] and "STREAMSINK_STREAM_MAX_BYTES" in body["detail"]
    return body


def test_over_budget_is_429_in_both_lanes_while_another_stream_accepts(
    small: TestClient, redis_client: redis.Redis
) -> None:
    sid, sink = _stream(small, "slow")
    other, _ = _stream(small, "other")
    accepted = _fill(small, sid)
    assert 0 < accepted < 1000
    assert eventlog.length(redis_client, sid) == accepted

    answers = {}
    for lane, query in LANES.items():
        r = small.post(f"/api/v1/stream/{sid}/events{query}", json=events_body(20))
        answers[lane] = (r.status_code, r.headers["Retry-After"], _refusal(r, sid))
    assert answers["fast"] == answers["route"]
    # The route's create-the-stream form is held to the same budget.
    body = events_body(20, stream={"name": "slow"})
    _refusal(small.post("/api/v1/stream/slow/events", json=body), sid)
    assert eventlog.length(redis_client, sid) == accepted  # nothing of a refused POST was stored

    for query in LANES.values():  # the other stream keeps flowing
        r = small.post(f"/api/v1/stream/{other}/events{query}", json=events_body(20))
        assert r.status_code == 202, r.text

    # The sink catches up: the next POST trims what it delivered and is accepted
    # (delivered events inside the replay window give way to the budget).
    last = eventlog.last_id(redis_client, sid)
    assert store_sinks.update_sink_state(redis_client, sink, cursor=last)  # type: ignore[arg-type]
    for query in LANES.values():
        r = small.post(f"/api/v1/stream/{sid}/events{query}", json=events_body(20))
        assert r.status_code == 202, r.text
    assert eventlog.estimated_bytes(redis_client, sid) <= BUDGET
    got = small.get(f"/api/v1/stream/{sid}/sink/{sink}").json()
    assert got["droppedEvents"] == 0  # an enabled sink is back-pressured, never dropped


def test_a_disabled_sink_does_not_hold_the_budget(
    small: TestClient, redis_client: redis.Redis
) -> None:
    sid, sink = _stream(small, "parked")
    small.patch(f"/api/v1/stream/{sid}/sink/{sink}", json={"status": "disabled"})
    for _ in range(30):  # well past the budget: the disabled sink's oldest events go
        r = small.post(f"/api/v1/stream/{sid}/events", json=events_body(20))
        assert r.status_code == 202, r.text
    got = small.get(f"/api/v1/stream/{sid}/sink/{sink}").json()
    assert got["droppedEvents"] > 0 and got["droppedSince"] is not None
    kept = eventlog.length(redis_client, sid)
    assert got["droppedEvents"] == 600 - kept  # counted, never silent


# --- Redis out of memory -------------------------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path) -> Iterator[tuple[TestClient, redis.Redis]]:
    """An app on its own embedded Redis, whose maxmemory the test lowers."""
    server = EmbeddedRedis(tmp_path / "redis", maxmemory=64 * 1024 * 1024)
    r = redis.Redis.from_url(server.url)
    try:
        settings = Settings(auth_token=TOKEN, redis_url=server.url)
        with TestClient(
            create_app(settings, r), headers=AUTH, raise_server_exceptions=False
        ) as client:
            yield client, r
    finally:
        r.close()
        server.close()


def test_embedded_redis_runs_with_maxmemory_and_noeviction(
    tiny: tuple[TestClient, redis.Redis],
) -> None:
    _, r = tiny
    config = r.config_get("maxmemory*")
    assert int(config["maxmemory"]) == 64 * 1024 * 1024
    assert config["maxmemory-policy"] == "noeviction"


def _store_full(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) >= 1
    body = r.json()
    assert body["code"] == "store_full"
    assert "out of memory" in body["detail"] and "maxmemory" in body["detail"]


def test_a_write_refused_for_memory_is_503_in_every_lane(
    tiny: tuple[TestClient, redis.Redis],
) -> None:
    client, r = tiny
    sid, _ = _stream(client, "s")
    r.config_set("maxmemory", 1)  # every write that may grow memory is refused
    try:
        for query in LANES.values():
            _store_full(client.post(f"/api/v1/stream/{sid}/events{query}", json=events_body(3)))
        _store_full(
            client.post(f"/api/v1/stream/{sid}/events", json=events_body(3, stream={"name": "s"}))
        )
        _store_full(client.post("/api/v1/stream", json={"name": "more"}))
        keyed = {**AUTH, "Idempotency-Key": "oom-1"}  # its claim is a write too
        _store_full(client.post(f"/api/v1/stream/{sid}/events", json=events_body(3), headers=keyed))
        _store_full(client.post(f"/api/v1/stream/{sid}/sink", json=sink_body()))
        assert eventlog.length(r, sid) == 0  # never a lost 202: nothing was stored
    finally:
        r.config_set("maxmemory", 64 * 1024 * 1024)
    for query in LANES.values():
        r2 = client.post(f"/api/v1/stream/{sid}/events{query}", json=events_body(3))
        assert r2.status_code == 202, r2.text
    assert eventlog.length(r, sid) == 6
