"""The local OTLP receiver: span trees, bounded storage, and its routes.
Decoding: ``test_local_receiver_decode.py``."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from streamsink.api.routes.local import MAX_TREE_DEPTH, receiver_router, router, span_tree
from streamsink.errors import ApiError
from streamsink.receiver.store import TraceStore
from streamsink.settings import Settings
from tests.helpers.otlp_requests import (
    TRACE_A,
    TRACE_B,
    make_request,
    make_span,
    sample_request,
    span_id,
    to_json,
    to_protobuf,
)

PB = "application/x-protobuf"
JSON = "application/json"
AUTH = {"Authorization": "Bearer t"}


# --- trees ----------------------------------------------------------------------


def node(sid: str, parent: str | None, start: int) -> dict[str, Any]:
    return {"spanId": sid, "parentSpanId": parent, "startTimeUnixNano": start, "name": sid}


def names(tree: list[dict[str, Any]]) -> list[Any]:
    return [(n["name"], names(n["children"])) if n["children"] else n["name"] for n in tree]


def test_span_tree_nesting_orphans_and_cycles() -> None:
    spans = [
        node("c2", "r", 30),
        node("r", None, 10),
        node("c1", "r", 20),
        node("g", "c1", 25),
        node("orphan", "missing", 5),
        node("self", "self", 40),
        node("x", "y", 50),
        node("y", "x", 60),  # a cycle: cut at its earliest span
    ]
    assert names(span_tree(spans)) == [
        "orphan",
        ("r", [("c1", ["g"]), "c2"]),
        "self",
        ("x", ["y"]),
    ]


def test_span_tree_depth_is_capped() -> None:
    chain = [node(f"s{i:04}", f"s{i - 1:04}" if i else None, i) for i in range(300)]
    tree = span_tree(chain)
    depth, current = 1, tree[0]
    while current["children"] and len(current["children"]) == 1:
        depth, current = depth + 1, current["children"][0]
    assert depth == MAX_TREE_DEPTH
    assert [n["name"] for n in current["children"]] == [f"s{i:04}" for i in range(64, 300)]
    orjson.dumps(tree)  # serializable despite the long chain


# --- storage --------------------------------------------------------------------


def spans_for(trace: int, count: int) -> list[dict[str, Any]]:
    tid = trace.to_bytes(16, "big").hex()
    return [
        {
            "traceId": tid,
            "spanId": span_id(i).hex(),
            "parentSpanId": None,
            "name": f"t{trace}",
            "startTimeUnixNano": i,
            "endTimeUnixNano": i + 1,
            "serviceName": "s",
        }
        for i in range(count)
    ]


@pytest.fixture
def rconn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_store_bounds_traces_and_spans(rconn: redis.Redis) -> None:
    store = TraceStore(rconn, max_traces=3, max_spans=10)
    for t in range(1, 6):
        store.add(spans_for(t, 2), now_ms=t)
    assert [tr.spans[0]["name"] for tr in store.list(10)] == ["t5", "t4", "t3"]
    assert store.span_count() == 6 and store.trace_count() == 3
    assert store.add(spans_for(6, 7), now_ms=6) == (7, 2, 0)  # 13 spans: drop t3, t4
    assert [tr.trace_id[-1] for tr in store.list()] == ["6", "5"]
    assert store.span_count() == 9
    # one trace never exceeds max_spans, and re-sent spans overwrite themselves
    assert store.add(spans_for(7, 25), now_ms=7) == (10, 2, 15)  # 15 rejected: counted
    assert store.add(spans_for(7, 3), now_ms=8) == (0, 0, 0)
    assert store.span_count() == 10 and store.trace_count() == 1
    stored = sum(rconn.hlen(k) for k in rconn.scan_iter("ss:local:trace:*"))
    assert stored == store.span_count()


def test_store_get_list_clear(rconn: redis.Redis) -> None:
    store = TraceStore(rconn)
    store.add(spans_for(1, 3), now_ms=100)
    store.add(spans_for(2, 1), now_ms=200)
    store.add(spans_for(1, 1), now_ms=300)  # trace 1 seen again: newest
    listed = store.list(1)
    assert len(listed) == 1 and listed[0].last_seen_ms == 300 and len(listed[0].spans) == 3
    two = store.get((2).to_bytes(16, "big").hex())
    assert two is not None and len(two.spans) == 1
    assert store.get("0" * 32) is None
    assert store.clear() == 2
    assert store.list() == [] and store.span_count() == 0 and rconn.dbsize() == 0


# --- routes ---------------------------------------------------------------------


class SmallSettings(Settings):
    local_max_body_bytes: int = 4096


@pytest.fixture
def api(rconn: redis.Redis) -> Iterator[TestClient]:
    app = FastAPI()
    app.state.redis = rconn
    app.state.settings = SmallSettings(auth_token="t")

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"code": exc.code, "detail": exc.detail}, status_code=exc.status_code)

    app.include_router(router)
    app.include_router(receiver_router)
    with TestClient(app) as client:
        yield client


def test_receive_json_protobuf_gzip_then_list_tree(api: TestClient) -> None:
    r = api.post("/v1/traces", content=to_json(sample_request()), headers={"Content-Type": JSON})
    assert r.status_code == 200 and r.content == b"{}"
    assert r.headers["content-type"].startswith(JSON)
    other = make_request([make_span("b-root", TRACE_B, sid=7, start=2_000_000_000_000_000_000)])
    r = api.post(
        "/v1/traces",
        content=gzip.compress(to_protobuf(other)),
        headers={"Content-Type": PB, "Content-Encoding": "gzip"},
    )
    assert r.status_code == 200 and r.content == b""
    assert r.headers["content-type"] == PB

    listed = api.get("/api/v1/local/traces", headers=AUTH).json()
    assert listed["done"] is True
    # newest first (a tie in ms falls back to the larger trace id, TRACE_B, as well)
    assert [t["traceId"] for t in listed["data"]] == [TRACE_B.hex(), TRACE_A.hex()]
    trace = api.get(f"/api/v1/local/traces/{TRACE_A.hex().upper()}", headers=AUTH).json()
    assert trace["spanCount"] == 2 and trace["rootName"] == "root"
    (root,) = trace["spans"]
    assert root["name"] == "root" and [c["name"] for c in root["children"]] == ["child"]
    assert trace["serviceNames"] == ["checkout"]

    assert api.get("/api/v1/local/traces?limit=1", headers=AUTH).json()["done"] is False
    assert api.delete("/api/v1/local/traces", headers=AUTH).status_code == 204
    assert api.get("/api/v1/local/traces", headers=AUTH).json() == {"data": [], "done": True}


def test_listing_gives_nanosecond_times_as_exact_strings(api: TestClient) -> None:
    """Times past 2**53 ns are decimal strings, as in OTLP JSON: a JSON number
    1755617092291000001 reads as 1755617092291000064 in a browser."""
    start = 1_755_617_092_291_000_001
    assert float(start) != start  # not representable as a double
    root = make_span("root", TRACE_A, sid=0, start=start, duration=2)
    child = make_span("child", TRACE_A, sid=1, parent=0, start=start + 1, duration=1)
    child.events.add(name="tick", time_unix_nano=start + 1)
    r = api.post(
        "/v1/traces", content=to_protobuf(make_request([child, root])), headers={"Content-Type": PB}
    )
    assert r.status_code == 200

    raw = api.get("/api/v1/local/traces", headers=AUTH).content
    assert b'"startTimeUnixNano":"1755617092291000001"' in raw  # a string in the JSON text
    for trace in (
        orjson.loads(raw)["data"][0],
        api.get(f"/api/v1/local/traces/{TRACE_A.hex()}", headers=AUTH).json(),
    ):
        assert (trace["startTimeUnixNano"], trace["endTimeUnixNano"], trace["durationNs"]) == (
            "1755617092291000001",
            "1755617092291000003",
            "2",
        )
        (top,) = trace["spans"]
        assert (top["name"], top["startTimeUnixNano"], top["endTimeUnixNano"]) == (
            "root",
            "1755617092291000001",
            "1755617092291000003",
        )
        (low,) = top["children"]
        assert (low["startTimeUnixNano"], low["endTimeUnixNano"], low["durationNs"]) == (
            "1755617092291000002",
            "1755617092291000003",
            "1",
        )
        assert low["events"][0]["timeUnixNano"] == "1755617092291000002"


def test_listing_requires_auth_and_validates(api: TestClient) -> None:
    for method, path in [
        ("GET", "/api/v1/local/traces"),
        ("DELETE", "/api/v1/local/traces"),
        ("GET", f"/api/v1/local/traces/{TRACE_A.hex()}"),
    ]:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = api.request(method, path, headers=headers)
            assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
    assert api.get("/api/v1/local/traces?limit=0", headers=AUTH).status_code == 422
    assert api.get("/api/v1/local/traces?limit=251", headers=AUTH).status_code == 422
    assert api.get("/api/v1/local/traces?limit=250", headers=AUTH).status_code == 200
    r = api.get(f"/api/v1/local/traces/{TRACE_A.hex()}", headers=AUTH)
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert api.get("/api/v1/local/traces/xyz", headers=AUTH).status_code == 400


def test_receiver_error_answers(api: TestClient, rconn: redis.Redis) -> None:
    r = api.post("/v1/traces", content=b"{bad", headers={"Content-Type": JSON})
    assert r.status_code == 400 and r.json()["code"] == 3 and "invalid JSON" in r.json()["message"]
    r = api.post("/v1/traces", content=b"\xff\xff\xff", headers={"Content-Type": PB})
    assert r.status_code == 400 and r.headers["content-type"] == PB
    assert r.content.startswith(b"\x08\x03\x12") and b"invalid OTLP protobuf" in r.content
    r = api.post("/v1/traces", content=b"{}", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and "unsupported Content-Type" in r.json()["message"]
    r = api.post("/v1/traces", content=b" " * 5000, headers={"Content-Type": JSON})
    assert r.status_code == 413 and "exceeds 4096 bytes" in r.json()["message"]
    r = api.post(
        "/v1/traces", content=iter([b" " * 3000, b" " * 3000]), headers={"Content-Type": JSON}
    )  # chunked: no Content-Length
    assert r.status_code == 413
    assert rconn.dbsize() == 0


def test_default_body_limit_is_8_mib(rconn: redis.Redis) -> None:
    app = FastAPI()
    app.state.redis = rconn
    app.state.settings = Settings(auth_token="t")
    app.include_router(receiver_router)
    with TestClient(app) as client:
        r = client.post(
            "/v1/traces", content=b" " * (8 * 1024 * 1024 + 1), headers={"Content-Type": JSON}
        )
        assert r.status_code == 413
        r = client.post("/v1/traces", content=b" " * 1024 + b"{}", headers={"Content-Type": JSON})
        assert r.status_code == 200
