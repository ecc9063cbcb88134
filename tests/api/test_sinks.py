"""Sinks: CRUD, validation, cursor at creation, engine state, headers, transformation."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.storage import eventlog as event_log
from streamsink.storage import sinks as store_sinks

from .util import SINK_URL, events_body, sink_body

S = "/api/v1/stream/orders/sink"


def test_create_with_defaults(client: TestClient, stream: dict[str, Any]) -> None:
    r = client.post(S, json=sink_body())
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["id"].startswith("sink_")
    assert out["type"] == "otelTracing" and out["status"] == "enabled"
    assert out["config"] == {
        "url": SINK_URL,
        "headers": {"headers": {}, "sensitive": []},
        "encoding": "auto",
        "compression": "none",
    }
    assert out["negotiatedEncoding"] is None
    assert out["batchSize"] == 100 and out["maxWaitSecs"] == 0
    assert out["eventTypes"] == [] and out["metadata"] == {}
    assert out["currentIterator"] == "0-0"
    assert out["failureReason"] is None and out["nextRetryAt"] is None


def test_new_sink_starts_after_the_last_event(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    client.post("/api/v1/stream/orders/events", json=events_body(3))
    last = event_log.last_id(redis_client, stream["id"])
    out = client.post(S, json=sink_body(status="disabled", batchSize=5, maxWaitSecs=300)).json()
    assert out["currentIterator"] == last != "0-0"
    assert out["status"] == "disabled" and out["batchSize"] == 5 and out["maxWaitSecs"] == 300


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (sink_body(type="amazonS3"), "type"),
        (sink_body(type="poller"), "config"),  # a poller sink has no url
        ({"config": {"url": SINK_URL}}, "type"),
        (sink_body(config={}), "config"),
        (sink_body(config={"url": "ftp://x.example.com"}), "config"),
        (sink_body(config={"url": "not a url"}), "config"),
        (sink_body(config={"url": "https://"}), "config"),
        (sink_body(config={"url": "http://h:99999/"}), "config"),
        (sink_body(batchSize=0), "batchSize"),
        (sink_body(batchSize=1001), "batchSize"),
        (sink_body(batchSize="many"), "batchSize"),
        (sink_body(maxWaitSecs=-1), "maxWaitSecs"),
        (sink_body(maxWaitSecs=301), "maxWaitSecs"),
        (sink_body(status="paused"), "status"),
        (sink_body(uid="sink_x"), "uid"),
        (sink_body(eventTypes=["bad name"]), "eventTypes"),
        (sink_body(config={"url": SINK_URL, "headers": {"Bad Name": "v"}}), "config"),
        (sink_body(config={"url": SINK_URL, "headers": {"X-A": "a\r\nb"}}), "config"),
        (sink_body(config={"url": SINK_URL, "headers": {"Content-Type": "x"}}), "config"),
    ],
)
def test_invalid_sink_is_422(
    client: TestClient, stream: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    r = client.post(S, json=body)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"][:2] == ["body", field]
    if field == "type" and "type" in body:
        assert "otelTracing" in detail[0]["msg"]


def test_unknown_stream_is_404(client: TestClient) -> None:
    r = client.post("/api/v1/stream/nope/sink", json=sink_body())
    assert r.status_code == 404 and "stream" in r.json()["detail"]
    assert client.get("/api/v1/stream/nope/sink").status_code == 404


def test_get_by_id_and_uid_and_not_across_streams(client: TestClient, sink: dict[str, Any]) -> None:
    assert client.get(f"{S}/{sink['id']}").json() == sink
    assert client.get(f"{S}/main").json() == sink
    client.post("/api/v1/stream", json={"name": "other", "uid": "other"})
    r = client.get(f"/api/v1/stream/other/sink/{sink['id']}")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert client.get("/api/v1/stream/other/sink/main").status_code == 404
    # sink uids are per stream
    assert client.post("/api/v1/stream/other/sink", json=sink_body(uid="main")).status_code == 201


def test_duplicate_uid_is_409(client: TestClient, sink: dict[str, Any]) -> None:
    r = client.post(S, json=sink_body(uid="main"))
    assert r.status_code == 409 and r.json()["code"] == "conflict"


def test_list_paginates(client: TestClient, stream: dict[str, Any]) -> None:
    ids = [client.post(S, json=sink_body()).json()["id"] for _ in range(3)]
    page = client.get(S, params={"limit": 2}).json()
    assert [s["id"] for s in page["data"]] == ids[:2] and page["done"] is False
    page = client.get(S, params={"limit": 2, "iterator": page["iterator"]}).json()
    assert [s["id"] for s in page["data"]] == ids[2:] and page["done"] is True
    desc = client.get(S, params={"order": "descending"}).json()
    assert [s["id"] for s in desc["data"]] == ids[::-1]


def test_upsert_creates_then_replaces_keeping_cursor_and_code(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    r = client.put(f"{S}/mirror", json=sink_body(batchSize=10, metadata={"a": "b"}))
    assert r.status_code == 201
    created = r.json()
    assert created["uid"] == "mirror"
    store_sinks.update_sink_state(redis_client, created["id"], cursor="5-0")
    code = "function handler(input) { return {spans: []}; }"
    client.patch(f"{S}/mirror/transformation", json={"code": code})
    r = client.put(f"{S}/mirror", json=sink_body(config={"url": "http://127.0.0.1:4318/v1/traces"}))
    assert r.status_code == 200
    out = r.json()
    assert out["id"] == created["id"] and out["uid"] == "mirror"
    assert out["batchSize"] == 100 and out["metadata"] == {}
    assert out["config"]["url"] == "http://127.0.0.1:4318/v1/traces"
    assert out["currentIterator"] == "5-0"
    assert client.get(f"{S}/mirror/transformation").json()["code"] == code
    assert client.put(f"{S}/sink_0000000000000000000000", json=sink_body()).status_code == 404


def test_patch_changes_only_given_fields(client: TestClient, sink: dict[str, Any]) -> None:
    r = client.patch(
        f"{S}/main", json={"type": "otelTracing", "config": {}, "batchSize": 7, "eventTypes": ["a"]}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["batchSize"] == 7 and out["eventTypes"] == ["a"]
    assert out["config"]["url"] == SINK_URL and out["uid"] == "main"
    out = client.patch(f"{S}/main", json={"config": {"url": "https://b.example.com/t"}}).json()
    assert out["config"]["url"] == "https://b.example.com/t" and out["batchSize"] == 7
    out = client.patch(f"{S}/main", json={"eventTypes": None, "uid": "renamed"}).json()
    assert out["eventTypes"] == [] and out["uid"] == "renamed"
    assert client.get(f"{S}/main").status_code == 404
    assert client.get(f"{S}/renamed").status_code == 200
    for bad in ({"batchSize": 0}, {"maxWaitSecs": 999}, {"type": "sqs"}, {"status": "retrying"}):
        assert client.patch(f"{S}/renamed", json=bad).status_code == 422


def test_enable_revives_a_disabled_sink(
    client: TestClient, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    assert store_sinks.update_sink_state(
        redis_client, sink["id"], status="disabled", failure_reason="HTTP 400", cursor="9-1"
    )
    out = client.get(f"{S}/main").json()
    assert out["status"] == "disabled" and out["failureReason"] == "HTTP 400"
    out = client.patch(f"{S}/main", json={"status": "enabled"}).json()
    assert out["status"] == "enabled" and out["failureReason"] is None
    assert out["currentIterator"] == "9-1"  # resumes where it left off
    store_sinks.update_sink_state(redis_client, sink["id"], status="retrying", next_retry_at=1000)
    out = client.get(f"{S}/main").json()
    assert out["status"] == "retrying" and out["nextRetryAt"].startswith("1970-01-01T00:00:01")
    out = client.patch(f"{S}/main", json={"status": "enabled"}).json()
    assert out["status"] == "retrying"  # the engine owns retries
    out = client.patch(f"{S}/main", json={"status": "disabled"}).json()
    assert out["status"] == "disabled" and out["nextRetryAt"] is None


def test_delete(client: TestClient, sink: dict[str, Any], redis_client: redis.Redis) -> None:
    assert client.delete(f"{S}/main").status_code == 204
    assert client.get(f"{S}/{sink['id']}").status_code == 404
    assert client.delete(f"{S}/main").status_code == 404
    assert not redis_client.exists(f"ss:sink:{sink['id']}")
    assert client.post(S, json=sink_body(uid="main")).status_code == 201


# --- headers ----------------------------------------------------------------------


def test_headers_patch_get_and_redaction(client: TestClient, sink: dict[str, Any]) -> None:
    H = f"{S}/main/headers"
    assert client.get(H).json() == {"headers": {}, "sensitive": []}
    r = client.patch(
        H,
        json={
            "headers": {
                "Authorization": "Bearer s3cret",
                "X-Api-Key": "k",
                "X-Auth-Token": "t",
                "X-Tenant": "acme",
            }
        },
    )
    assert r.status_code == 200
    out = r.json()
    assert out["headers"]["X-Tenant"] == "acme"
    assert out["headers"]["Authorization"] == "************"
    assert set(out["sensitive"]) == {"Authorization", "X-Api-Key", "X-Auth-Token"}
    assert "s3cret" not in client.get(f"{S}/main").text
    assert "s3cret" not in client.get(S).text
    assert client.get(f"{S}/main").json()["config"]["headers"] == out
    # sending the mask back keeps the secret; null deletes (case-insensitively)
    out = client.patch(H, json={"headers": {"Authorization": "************", "x-tenant": None}})
    assert "X-Tenant" not in out.json()["headers"]
    stored = store_sinks.get_sink(client.app.state.redis, sink["id"])
    assert stored is not None and stored.headers["Authorization"] == "Bearer s3cret"
    out = client.patch(H, json={"headers": {"x-tenant": "b"}}).json()
    assert out["headers"]["x-tenant"] == "b"


@pytest.mark.parametrize(
    "headers",
    [{"Bad Name": "v"}, {"X-A": "line\nbreak"}, {"X-A": "cr\rhere"}, {"Host": "x"}, {"": "v"}],
)
def test_bad_headers_are_422(
    client: TestClient, sink: dict[str, Any], headers: dict[str, str]
) -> None:
    r = client.patch(f"{S}/main/headers", json={"headers": headers})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:2] == ["body", "headers"]


def test_headers_of_unknown_sink_is_404(client: TestClient, stream: dict[str, Any]) -> None:
    assert client.get(f"{S}/nope/headers").status_code == 404
    assert client.patch(f"{S}/nope/headers", json={"headers": {}}).status_code == 404


# --- transformation ---------------------------------------------------------------

CODE = "function handler(input) {\n  return {spans: []};\n}\n"


def test_transformation_set_get_and_remove(
    client: TestClient, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    T = f"{S}/main/transformation"
    assert client.get(T).json() == {"code": None, "enabled": False}
    r = client.patch(T, json={"code": CODE})
    assert r.status_code == 200 and r.json() == {}
    assert client.get(T).json() == {"code": CODE, "enabled": True}
    stored = store_sinks.get_sink(redis_client, sink["id"])
    assert stored is not None and stored.code == CODE
    assert client.patch(T, json={"code": None}).status_code == 200
    assert client.get(T).json() == {"code": None, "enabled": False}


@pytest.mark.parametrize("code", ["short", "x" * 51201, 42])
def test_transformation_size_and_type_are_422(
    client: TestClient, sink: dict[str, Any], code: Any
) -> None:
    assert client.patch(f"{S}/main/transformation", json={"code": code}).status_code == 422


def test_transformation_that_does_not_compile_is_400(
    client: TestClient, sink: dict[str, Any]
) -> None:
    pytest.importorskip("streamsink.transform.runtime")
    T = f"{S}/main/transformation"
    r = client.patch(T, json={"code": "function handler(input) {\n  return {spans: [;\n}\n"})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == "invalid_transformation"
    assert "line 2" in body["detail"] and "column" in body["detail"]
    r = client.patch(T, json={"code": "function notTheHandler(input) { return 1; }"})
    assert r.status_code == 400 and "handler" in r.json()["detail"]
    assert client.get(T).json()["code"] is None  # nothing stored
