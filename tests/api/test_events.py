"""Events: append (atomic, durable before 202), limits, stream auto-creation,
idempotent replay, latest events and the sink events reader."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.storage import eventlog as event_log

from .util import AUTH, events_body, sink_body

E = "/api/v1/stream/orders/events"


def _log(redis_client: redis.Redis, stream_id: str) -> list[dict[bytes, bytes]]:
    entries = event_log.parse_entries(redis_client.xrange(f"ss:log:{stream_id}"))
    return [{b"t": e.event_type.encode(), b"p": e.payload.encode()} for e in entries]


def test_append_stores_every_event_in_order(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    body = {
        "events": [
            {"eventType": "order.created", "payload": '{"id": 1}'},
            {"eventType": "order.paid", "payload": {"id": 1, "total": 9.5}},
            {"eventType": "note", "payload": "plain text"},
        ]
    }
    r = client.post(E, json=body)
    assert r.status_code == 202 and r.json() == {}
    entries = _log(redis_client, stream["id"])
    assert [e[b"t"] for e in entries] == [b"order.created", b"order.paid", b"note"]
    assert entries[0][b"p"] == b'{"id": 1}'
    assert orjson.loads(entries[1][b"p"]) == {"id": 1, "total": 9.5}
    assert entries[2][b"p"] == b"plain text"
    assert all(list(e) == [b"t", b"p"] for e in entries)  # the ingest time: the entry id


def test_unknown_stream_is_404_and_nothing_is_written(
    client: TestClient, redis_client: redis.Redis
) -> None:
    r = client.post("/api/v1/stream/nope/events", json=events_body(1))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert redis_client.keys("ss:log:*") == []


def test_stream_is_created_by_uid_or_id(client: TestClient, redis_client: redis.Redis) -> None:
    r = client.post("/api/v1/stream/fresh/events", json=events_body(2, stream={"name": "Fresh"}))
    assert r.status_code == 202
    created = client.get("/api/v1/stream/fresh").json()
    assert created["uid"] == "fresh" and created["name"] == "Fresh"
    assert len(_log(redis_client, created["id"])) == 2
    # an existing stream: `stream` is ignored
    r = client.post("/api/v1/stream/fresh/events", json=events_body(1, stream={"name": "Other"}))
    assert r.status_code == 202
    assert client.get("/api/v1/stream/fresh").json()["name"] == "Fresh"
    sid = "strm_MyOwnId123"
    r = client.post(f"/api/v1/stream/{sid}/events", json=events_body(1, stream={"name": "x"}))
    assert r.status_code == 202
    assert client.get(f"/api/v1/stream/{sid}").json()["id"] == sid
    r = client.post("/api/v1/stream/strm_bad.id/events", json=events_body(1, stream={"name": "x"}))
    assert r.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"events": []},
        {},
        {"events": "x"},
        {"events": [{"eventType": "ok"}]},
        {"events": [{"payload": "x"}]},
        {"events": [{"eventType": "bad type", "payload": "x"}]},
        {"events": [{"eventType": "ok", "payload": 5}]},
        {"events": [{"eventType": "ok", "payload": None}]},
        {"events": [{"eventType": "ok", "payload": "x"}], "stream": {"uid": "u"}},
    ],
)
def test_invalid_bodies_are_422_and_write_nothing(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis, body: Any
) -> None:
    r = client.post(E, json=body)
    assert r.status_code == 422, r.text
    assert isinstance(r.json()["detail"], list)
    assert _log(redis_client, stream["id"]) == []


def test_one_bad_event_rejects_the_whole_request(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    body = events_body(5)
    body["events"][3]["eventType"] = "not valid!"
    r = client.post(E, json=body)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:3] == ["body", "events", 3]
    assert _log(redis_client, stream["id"]) == []


def test_malformed_json_is_422(client: TestClient, stream: dict[str, Any]) -> None:
    for raw in (b'{"events": [', b"\xff\xfe", b"[1, 2"):
        r = client.post(E, content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, raw
        assert r.json()["detail"][0]["type"] == "json_invalid"


def test_more_than_1000_events_is_422(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    events = [{"eventType": "e", "payload": ""} for _ in range(1001)]
    r = client.post(E, json={"events": events})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "events"]
    assert _log(redis_client, stream["id"]) == []
    assert client.post(E, json={"events": events[:1000]}).status_code == 202
    assert len(_log(redis_client, stream["id"])) == 1000


def test_oversized_body_is_413(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    big = "x" * (300 * 1024)  # the fixture limit is 256 KiB
    r = client.post(E, json={"events": [{"eventType": "e", "payload": big}]})
    assert r.status_code == 413
    assert r.json()["code"] == "payload_too_large"

    def chunks() -> Any:  # no Content-Length: the streamed size is checked
        for _ in range(40):
            yield b"x" * 8192

    r = client.post(E, content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert _log(redis_client, stream["id"]) == []


def test_idempotent_retry_stores_events_once(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "retry-1"}
    first = client.post(E, json=events_body(3), headers=headers)
    again = client.post(E, json=events_body(3), headers=headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json() == {}
    assert again.headers.get("idempotent-replayed") == "true"
    assert len(_log(redis_client, stream["id"])) == 3
    assert client.post(E, json=events_body(3), headers={"Idempotency-Key": "2"}).status_code == 202
    assert len(_log(redis_client, stream["id"])) == 6
    # another token does not share the key
    other = {**headers, "Authorization": "Bearer second-token"}
    assert client.post(E, json=events_body(3), headers=other).status_code == 202
    assert len(_log(redis_client, stream["id"])) == 9


def test_idempotent_create_replays_the_same_resource(client: TestClient) -> None:
    headers = {"Idempotency-Key": "create-1"}
    a = client.post("/api/v1/stream", json={"name": "a", "uid": "a"}, headers=headers)
    b = client.post("/api/v1/stream", json={"name": "a", "uid": "a"}, headers=headers)
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    # errors are replayed too, except 5xx
    c = client.post(
        "/api/v1/stream", json={"name": "a", "uid": "a"}, headers={"Idempotency-Key": "x"}
    )
    assert c.status_code == 409
    client.delete("/api/v1/stream/a")
    d = client.post(
        "/api/v1/stream", json={"name": "a", "uid": "a"}, headers={"Idempotency-Key": "x"}
    )
    assert d.status_code == 409 and d.headers.get("idempotent-replayed") == "true"


def test_concurrent_duplicates_write_once(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    results: list[int] = []

    def post() -> None:
        with TestClient(client.app, headers=AUTH) as c:
            r = c.post(E, json=events_body(50), headers={"Idempotency-Key": "race"})
            results.append(r.status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [202] * 6
    assert len(_log(redis_client, stream["id"])) == 50


def test_5xx_is_not_replayed(
    client: TestClient, stream: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamsink.storage import appends as store

    real = store.append_call  # both lanes (fast path and route) build their call here
    monkeypatch.setattr(store, "append_call", lambda *a, **k: 1 / 0)
    headers = {"Idempotency-Key": "flaky"}
    assert client.post(E, json=events_body(1), headers=headers).status_code == 500
    monkeypatch.setattr(store, "append_call", real)
    r = client.post(E, json=events_body(1), headers=headers)
    assert r.status_code == 202 and "idempotent-replayed" not in r.headers


# --- reading ------------------------------------------------------------------------


def test_latest_events_newest_first_with_paging(client: TestClient, stream: dict[str, Any]) -> None:
    client.post(E, json={"events": [{"eventType": "t", "payload": str(i)} for i in range(5)]})
    r = client.get(f"{E}/latest", params={"limit": 2})
    assert r.status_code == 200
    page = r.json()
    assert [e["payload"] for e in page["data"]] == ["4", "3"] and page["done"] is False
    assert page["data"][0]["eventType"] == "t" and page["data"][0]["timestamp"].endswith("Z")
    page = client.get(f"{E}/latest", params={"limit": 2, "iterator": page["iterator"]}).json()
    assert [e["payload"] for e in page["data"]] == ["2", "1"]
    page = client.get(f"{E}/latest", params={"limit": 2, "iterator": page["iterator"]}).json()
    assert [e["payload"] for e in page["data"]] == ["0"] and page["done"] is True
    assert client.get(f"{E}/latest", params={"after": "2999-01-01T00:00:00Z"}).json()["data"] == []
    assert (
        len(client.get(f"{E}/latest", params={"after": "2000-01-01T00:00:00Z"}).json()["data"]) == 5
    )
    assert client.get(f"{E}/latest", params={"iterator": "nope"}).status_code == 422
    assert client.get(f"{E}/latest", params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/stream/nope/events/latest").status_code == 404


def test_sink_events_filter_and_iterate(client: TestClient, stream: dict[str, Any]) -> None:
    client.post("/api/v1/stream/orders/sink", json=sink_body(uid="paid", eventTypes=["paid"]))
    events = [
        {"eventType": "paid" if i % 3 == 0 else "other", "payload": str(i)} for i in range(10)
    ]
    client.post(E, json={"events": events})
    url = "/api/v1/stream/orders/sink/paid/events"
    page = client.get(url, params={"limit": 2}).json()
    assert [e["payload"] for e in page["data"]] == ["0", "3"] and page["done"] is False
    page = client.get(url, params={"limit": 2, "iterator": page["iterator"]}).json()
    assert [e["payload"] for e in page["data"]] == ["6", "9"] and page["done"] is True
    page = client.get(url, params={"iterator": page["iterator"]}).json()
    assert page["data"] == [] and page["done"] is True
    assert client.get("/api/v1/stream/orders/sink/nope/events").status_code == 404


def test_log_module_primitives(redis_client: redis.Redis) -> None:
    assert event_log.last_id(redis_client, "strm_x") == "0-0"
    ids = event_log.append(redis_client, "strm_x", [("a", "1"), ("b", "2"), ("c", "3")])
    assert len(ids) == 3 and event_log.last_id(redis_client, "strm_x") == ids[-1]
    assert event_log.read_after(redis_client, "strm_x", "0-0", 2) == [
        (ids[0], "a", "1"),
        (ids[1], "b", "2"),
    ]
    assert event_log.read_after(redis_client, "strm_x", ids[1], 10) == [(ids[2], "c", "3")]
    assert event_log.read_after(redis_client, "strm_x", ids[2], 10) == []
    assert [e.id for e in event_log.latest(redis_client, "strm_x", 2)] == ids[:0:-1]
    assert [e.id for e in event_log.latest(redis_client, "strm_x", 5, before=ids[1])] == ids[:1]
    assert event_log.next_id("5-18") == "5-19" and event_log.prev_id("5-0") == (
        "4-18446744073709551615"
    )


def test_append_and_sink_edits_wake_the_engine(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    from streamsink.delivery import scheduling

    client.post(E, json=events_body(2))
    assert redis_client.exists(scheduling.kick_key(sink["id"]))  # default hook: kick_matching

    calls: list[tuple[Any, ...]] = []
    client.app.state.on_append = lambda *args: calls.append(("append", *args[1:]))
    client.app.state.on_sink_change = lambda *args: calls.append(("sink", *args[1:]))
    client.post(E, json=events_body(1, event_type="a.b"))
    client.patch("/api/v1/stream/orders/sink/main", json={"batchSize": 3})
    client.patch("/api/v1/stream/orders/sink/main", json={"status": "disabled"})  # no kick
    assert calls == [("append", stream["id"], {"a.b"}), ("sink", stream["id"], sink["id"])]

    def broken(*_: Any) -> None:
        raise RuntimeError("engine down")

    client.app.state.on_append = broken
    assert client.post(E, json=events_body(1)).status_code == 202


def test_deeply_nested_payload_object_is_stored(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    deep: dict[str, Any] = {}
    cur = deep
    for _ in range(400):  # deeper than orjson serialises
        cur["a"] = {}
        cur = cur["a"]
    r = client.post(E, json={"events": [{"eventType": "x", "payload": deep}]})
    assert r.status_code == 202
    assert orjson.loads(_log(redis_client, stream["id"])[0][b"p"]) == deep


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (b'{"name": "\\ud800"}', "name"),  # lone surrogate (stdlib JSON accepts it)
        (b'{"name": "x", "metadata": {"a": NaN}}', "metadata"),
    ],
)
def test_unrenderable_inputs_still_get_a_422(client: TestClient, raw: bytes, loc: str) -> None:
    r = client.post("/api/v1/stream", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:2] == ["body", loc]


@pytest.mark.parametrize("iterator", ["99999999999999999999999-1", "1-99999999999999999999999"])
def test_out_of_range_event_ids_are_422(
    client: TestClient, stream: dict[str, Any], iterator: str
) -> None:
    assert client.get(f"{E}/latest", params={"iterator": iterator}).status_code == 422
