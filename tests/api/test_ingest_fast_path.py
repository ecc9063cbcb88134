"""The events fast lane (``api.ingest``): it takes the plain valid case, stores
exactly what the route stores, and hands every other request to the route."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.api.middleware import ingest as ingest_lane
from streamsink.api.middleware.ingest import parse_events
from streamsink.settings import Settings
from streamsink.storage import appends, eventlog, metrics

from .util import AUTH, events_body

E = "/api/v1/stream/orders/events"
ROUTE = E + "?lane=route"  # a query string sends the request to the route


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Stream ids the route appended to (the fast lane never calls ``append_existing``)."""
    calls: list[str] = []
    real = appends.append_existing

    def spy(client: redis.Redis, stream: str, *args: Any, **kwargs: Any) -> str | None:
        calls.append(stream)
        return real(client, stream, *args, **kwargs)

    monkeypatch.setattr(appends, "append_existing", spy)
    return calls


def _stored(redis_client: redis.Redis, stream_id: str) -> list[tuple[bytes, bytes]]:
    entries = eventlog.parse_entries(redis_client.xrange(f"ss:log:{stream_id}"))
    return [(e.event_type.encode(), e.payload.encode()) for e in entries]


# --- parse_events ---------------------------------------------------------------


def test_parse_events_plain_body() -> None:
    body = {
        "events": [
            {"eventType": "a.b", "payload": '{"x": 1}'},
            {"eventType": "c-d_e", "payload": {"y": [1, 2.5, None], "z": "é"}},
            {"payload": ["l"], "eventType": "f"},
        ],
        "stream": None,
    }
    assert parse_events(orjson.dumps(body), 100) == [
        ("a.b", '{"x": 1}'),
        ("c-d_e", '{"y":[1,2.5,null],"z":"é"}'),
        ("f", '["l"]'),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"events": []}',
        b'{"events": {}}',
        b'{"events": [{"eventType": "a", "payload": "p"}], "stream": {"name": "x"}}',
        b'{"events": [{"eventType": "a", "payload": "p"}], "extra": 1}',
        b'{"events": [{"event_type": "a", "payload": "p"}]}',
        b'{"events": [{"eventType": "a", "payload": "p", "more": 1}]}',
        b'{"events": [{"eventType": "a"}]}',
        b'{"events": [{"eventType": "", "payload": "p"}]}',
        b'{"events": [{"eventType": "a b", "payload": "p"}]}',
        b'{"events": [{"eventType": 5, "payload": "p"}]}',
        b'{"events": [{"eventType": "a", "payload": 5}]}',
        b'{"events": [{"eventType": "a", "payload": null}]}',
        b'{"events": ["a"]}',
        b'{"events": [{"eventType": "a", "payload": "p"}, {"eventType": "a", "payload": "p"}, '
        b'{"eventType": "a", "payload": "p"}]}',
    ],
)
def test_parse_events_leaves_everything_else_to_the_route(body: bytes) -> None:
    assert parse_events(body, 2) is None


def test_parse_events_long_names() -> None:
    ok = orjson.dumps({"events": [{"eventType": "n" * 256, "payload": "p"}]})
    too_long = orjson.dumps({"events": [{"eventType": "n" * 257, "payload": "p"}]})
    assert parse_events(ok, 1) == [("n" * 256, "p")]
    assert parse_events(too_long, 1) is None


def test_parse_events_known_names_are_remembered_up_to_a_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Valid names are remembered (no regex for them again), at most
    ``_KNOWN_NAMES_MAX``; a bad name is refused before and after good ones."""
    monkeypatch.setattr(ingest_lane, "_known_names", set())
    monkeypatch.setattr(ingest_lane, "_KNOWN_NAMES_MAX", 3)

    def body(*names: str) -> bytes:
        return orjson.dumps({"events": [{"eventType": n, "payload": "p"} for n in names]})

    for bad in ("a b", "..", "", "n" * 257, "é"):
        assert parse_events(body("ok", bad), 5) is None
        assert bad not in ingest_lane._known_names
    assert parse_events(body("a", "b", "a", "c", "d"), 5) is not None
    assert ingest_lane._known_names == {"ok", "a", "b"}
    assert parse_events(body("d", "a b"), 5) is None
    assert parse_events(body("."), 5) is None


# --- the app ------------------------------------------------------------------------


def test_plain_bodies_take_the_fast_lane_and_store_what_the_route_stores(
    client: TestClient,
    stream: dict[str, Any],
    redis_client: redis.Redis,
    route_calls: list[str],
) -> None:
    body = {
        "events": [
            {"eventType": "order.created", "payload": '{"id": 1}'},
            {"eventType": "order.paid", "payload": {"id": 1, "total": 9.5, "tags": ["a"]}},
            {"eventType": "note", "payload": "plain text ✓"},
        ]
    }
    fast = client.post(E, json=body)
    assert route_calls == []
    slow = client.post(ROUTE, json=body)
    assert route_calls == ["orders"]
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content) == (202, b"{}")
    assert fast.headers["content-type"] == slow.headers["content-type"]
    stored = _stored(redis_client, stream["id"])
    assert stored[:3] == stored[3:] and len(stored) == 6
    assert redis_client.hget(metrics.COUNTERS_KEY, "events_ingested") == b"6"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"events": []}, {}),
        ({"events": [{"eventType": "bad name", "payload": "p"}]}, {}),
        ({"events": [{"eventType": "t", "payload": 1}]}, {}),
        (events_body(1), {"content-type": "text/plain"}),
        (events_body(1), {"Authorization": "Bearer wrong"}),
    ],
)
def test_everything_else_gets_the_routes_answer(
    client: TestClient,
    stream: dict[str, Any],
    redis_client: redis.Redis,
    body: dict[str, Any],
    headers: dict[str, str],
) -> None:
    a = client.post(E, content=orjson.dumps(body), headers=headers)
    b = client.post(ROUTE, content=orjson.dumps(body), headers=headers)
    assert a.status_code == b.status_code and a.status_code in (401, 422)
    assert a.json() == b.json()
    assert _stored(redis_client, stream["id"]) == []


def test_event_type_the_route_accepts_is_stored_once(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis, route_calls: list[str]
) -> None:
    body = {"events": [{"event_type": "snake.case", "payload": "p"}]}
    assert client.post(E, json=body).status_code == 202
    assert route_calls == ["orders"]
    assert _stored(redis_client, stream["id"]) == [(b"snake.case", b"p")]


def test_missing_stream_is_the_routes_404(client: TestClient, route_calls: list[str]) -> None:
    r = client.post("/api/v1/stream/nope/events", json=events_body(2))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert route_calls == ["nope"]


def test_stream_by_uid_and_by_id(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis, route_calls: list[str]
) -> None:
    assert client.post(E, json=events_body(1)).status_code == 202
    by_id = f"/api/v1/stream/{stream['id']}/events"
    assert client.post(by_id, json=events_body(1)).status_code == 202
    assert route_calls == [] and len(_stored(redis_client, stream["id"])) == 2


def test_idempotent_replay_on_the_fast_lane(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "k1"}
    first = client.post(E, json=events_body(3), headers=headers)
    again = client.post(E, json=events_body(3), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.headers.get("idempotent-replayed") == "true"
    assert len(_stored(redis_client, stream["id"])) == 3


def test_kicks_matching_sinks_like_the_route(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    sink = {"type": "otelTracing", "config": {"url": "https://c.example.com/v1/traces"}}
    made = client.post(f"/api/v1/stream/{stream['id']}/sink", json=sink).json()
    redis_client.delete(f"ss:kick:{made['id']}")
    assert client.post(E, json=events_body(1)).status_code == 202
    assert redis_client.exists(f"ss:kick:{made['id']}")
    assert redis_client.llen("rq:queue:deliver") >= 1


@pytest.fixture
def down_client(tmp_path: Any) -> Iterator[TestClient]:
    """An app whose Redis is a unix socket nobody listens on."""
    from streamsink.storage.connection import connect

    dead = connect(f"unix://{tmp_path}/none.sock", socket_timeout=0.5)
    app = create_app(Settings(auth_token="test-token"), dead)
    app.state.on_append = None
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as test_client:
        yield test_client


def test_redis_down_is_503_on_both_lanes(down_client: TestClient) -> None:
    for path in (E, ROUTE):
        r = down_client.post(path, json=events_body(1))
        assert r.status_code == 503, (path, r.text)
        assert r.json()["code"] == "service_unavailable"


@pytest.mark.parametrize("path", [E, ROUTE])
@pytest.mark.parametrize(
    ("sink_fields", "event_type", "kicked"),
    [
        ({}, "order.created", True),
        ({"eventTypes": ["order.created"]}, "order.created", True),
        ({"eventTypes": ["other", "order.created"]}, "order.created", True),
        ({"eventTypes": ["other"]}, "order.created", False),
        ({"status": "disabled"}, "order.created", False),
    ],
)
def test_both_lanes_kick_the_same_sinks(
    client: TestClient,
    stream: dict[str, Any],
    redis_client: redis.Redis,
    path: str,
    sink_fields: dict[str, Any],
    event_type: str,
    kicked: bool,
) -> None:
    body = {"type": "otelTracing", "config": {"url": "https://c.example.com/v1/traces"}}
    made = client.post(f"/api/v1/stream/{stream['id']}/sink", json={**body, **sink_fields})
    sink_id = made.json()["id"]
    redis_client.delete(f"ss:kick:{sink_id}", "rq:queue:deliver")
    assert client.post(path, json=events_body(2, event_type)).status_code == 202
    assert bool(redis_client.exists(f"ss:kick:{sink_id}")) is kicked
    assert redis_client.llen("rq:queue:deliver") == int(kicked)
    # a sink already kicked (busy) gets no second job
    assert client.post(path, json=events_body(1, event_type)).status_code == 202
    assert redis_client.llen("rq:queue:deliver") == int(kicked)
