"""The local OTLP receiver's bounds in bytes and its token: the whole app
(``create_app``) on a real Redis, whose memory (INFO used_memory) is measured
before and after."""

from __future__ import annotations

import gzip
import os
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from streamsink.api.app import create_app
from streamsink.settings import Settings
from tests.helpers.otlp_requests import make_request, make_span, to_json, to_protobuf

JSON = {"Content-Type": "application/json"}
GZIP_JSON = {**JSON, "Content-Encoding": "gzip"}
PB = {"Content-Type": "application/x-protobuf"}
TOKEN = "t0ken-for-the-receiver"
MiB = 1024 * 1024


@pytest.fixture
def make_api(redis_client: redis.Redis) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(auth_token=TOKEN, **overrides)
        client = TestClient(create_app(settings, redis_client), raise_server_exceptions=False)
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def trace(n: int, attributes: dict[str, Any]) -> bytes:
    """One span of its own trace ``n`` as OTLP JSON."""
    trace_id = (n + 1).to_bytes(16, "big")
    return to_json(make_request([make_span(f"t{n}", trace_id, sid=0, attributes=attributes)]))


def stored_traces(api: TestClient) -> list[dict[str, Any]]:
    r = api.get("/api/v1/local/traces?limit=250", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_the_reported_attack_no_longer_fills_redis(make_api, redis_client) -> None:  # type: ignore[no-untyped-def]
    """5 gzipped requests of ~30 KB, each a 30 MiB attribute: refused while
    decompressing (413 naming the setting); Redis does not grow."""
    api = make_api()
    before = used_memory(redis_client)
    body = gzip.compress(trace(0, {"blob": "a" * (30 * MiB)}))
    assert len(body) < 64 * 1024
    for _ in range(5):
        r = api.post("/v1/traces", content=body, headers=GZIP_JSON)
        assert r.status_code == 413, r.text
        assert "STREAMSINK_LOCAL_MAX_BODY_BYTES" in r.json()["message"]
    assert used_memory(redis_client) - before < 1 * MiB
    assert stored_traces(api) == []


def test_long_values_are_cut_with_a_marker_and_reported(make_api, redis_client) -> None:  # type: ignore[no-untyped-def]
    api = make_api()  # defaults: 64 KiB per value
    before = used_memory(redis_client)
    for n in range(5):
        body = gzip.compress(trace(n, {"blob": "é" * (2 * MiB), "small": "kept"}))
        r = api.post("/v1/traces", content=body, headers=GZIP_JSON)
        assert r.status_code == 200, r.text
        partial = r.json()["partialSuccess"]
        assert "STREAMSINK_LOCAL_MAX_ATTRIBUTE_BYTES" in partial["errorMessage"]
        assert "rejectedSpans" not in partial  # cut, not rejected
    grown = used_memory(redis_client) - before
    assert grown < 2 * MiB, grown  # 5 x 4 MiB of attribute before the limit
    traces = stored_traces(api)
    assert len(traces) == 5
    attrs = traces[0]["spans"][0]["attributes"]
    assert attrs["small"] == "kept"
    assert attrs["blob"].endswith(f"…[truncated from {4 * MiB} bytes]")
    assert len(attrs["blob"].split("…[")[0].encode()) == 64 * 1024  # a whole character cut


def test_protobuf_partial_success(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(local_max_attribute_bytes=100)
    body = to_protobuf(make_request([make_span("x", attributes={"s": "z" * 101})]))
    r = api.post("/v1/traces", content=body, headers=PB)
    assert r.status_code == 200
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert (
        "STREAMSINK_LOCAL_MAX_ATTRIBUTE_BYTES (100 bytes)" in answer.partial_success.error_message
    )
    r = api.post("/v1/traces", content=to_protobuf(make_request([make_span("y")])), headers=PB)
    assert r.status_code == 200 and r.content == b""  # nothing to report: empty response


def test_total_bytes_are_bounded_oldest_traces_first(make_api, redis_client) -> None:  # type: ignore[no-untyped-def]
    api = make_api(local_max_bytes=MiB, local_max_attribute_bytes=64 * 1024)
    before = used_memory(redis_client)
    for n in range(40):  # 40 x ~50 KiB: twice the budget
        r = api.post(
            "/v1/traces", content=trace(n, {"v": os.urandom(25 * 1024).hex()}), headers=JSON
        )
        assert r.status_code == 200, r.text
    assert used_memory(redis_client) - before < 3 * MiB
    kept = [t["rootName"] for t in stored_traces(api)]
    assert 10 < len(kept) < 21, kept
    assert kept == [f"t{n}" for n in range(39, 39 - len(kept), -1)]  # the newest, newest first
    stored = sum(
        redis_client.hstrlen(k, f)
        for k in redis_client.scan_iter("ss:local:trace:*")
        for f in redis_client.hkeys(k)
    )
    assert stored <= MiB
    assert int(redis_client.get("ss:local:bytes")) == stored  # the counter is exact


def test_a_trace_stops_growing_at_the_byte_budget(make_api) -> None:  # type: ignore[no-untyped-def]
    """Spans sent to one trace past the budget are rejected and counted, not
    stored, and the trace already stored is kept."""
    api = make_api(local_max_bytes=64 * 1024, local_max_attribute_bytes=64 * 1024)
    rejected = 0
    for n in range(10):
        span = make_span("same-trace", sid=n, attributes={"v": "x" * 10_000})
        r = api.post("/v1/traces", content=to_json(make_request([span])), headers=JSON)
        assert r.status_code == 200
        rejected += int(r.json().get("partialSuccess", {}).get("rejectedSpans", 0))
    (only,) = stored_traces(api)
    assert rejected > 0 and only["spanCount"] + rejected == 10
    assert only["spanCount"] >= 5


def test_receiver_body_limit_is_its_own(make_api) -> None:  # type: ignore[no-untyped-def]
    """STREAMSINK_LOCAL_MAX_BODY_BYTES governs /v1/traces, not the API's
    STREAMSINK_MAX_BODY_BYTES, and its 413 is an OTLP google.rpc.Status."""
    api = make_api(max_body_bytes=64 * 1024, local_max_body_bytes=256 * 1024)
    r = api.post("/v1/traces", content=trace(1, {"v": "x" * 100_000}), headers=JSON)
    assert r.status_code == 200, r.text
    r = api.post("/v1/traces", content=trace(2, {"v": "x" * 300_000}), headers=JSON)
    assert r.status_code == 413 and r.json()["code"] == 8
    assert "STREAMSINK_LOCAL_MAX_BODY_BYTES" in r.json()["message"]


def gzip_bomb(size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b" " * MiB
    return b"".join(packer.compress(chunk) for _ in range(size // MiB)) + packer.flush()


def test_gzip_bomb_stops_while_decompressing(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(local_max_body_bytes=MiB)
    bomb = gzip_bomb(256 * MiB)
    assert len(bomb) < MiB
    tracemalloc.start()
    try:
        r = api.post("/v1/traces", content=bomb, headers=GZIP_JSON)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.status_code == 413
    assert r.json()["message"] == (
        f"decompressed body exceeds {MiB} bytes (STREAMSINK_LOCAL_MAX_BODY_BYTES)"
    )
    assert peak < 8 * MiB, peak  # never inflated whole, nor past the limit


@pytest.mark.parametrize(
    ("host", "mode", "needs_token"),
    [
        ("127.0.0.1", "auto", False),
        ("localhost", "auto", False),
        ("::1", "auto", False),
        ("0.0.0.0", "auto", True),
        ("::", "auto", True),
        ("192.0.2.10", "auto", True),
        ("127.0.0.1", "always", True),
        ("0.0.0.0", "never", False),
    ],
)
def test_receiver_token_beyond_loopback(make_api, host: str, mode: str, needs_token: bool) -> None:  # type: ignore[no-untyped-def]
    api = make_api(host=host, local_receiver_auth=mode)
    body = trace(1, {"a": 1})
    r = api.post("/v1/traces", content=body, headers=JSON)
    if not needs_token:
        assert r.status_code == 200, r.text
        return
    assert r.status_code == 401
    assert r.json()["code"] == 16  # google.rpc UNAUTHENTICATED
    assert "Authorization: Bearer" in r.json()["message"]
    if mode == "auto":
        assert "STREAMSINK_LOCAL_RECEIVER_AUTH" in r.json()["message"]
    r = api.post("/v1/traces", content=body, headers={**JSON, "Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = api.post("/v1/traces", content=body, headers={**JSON, "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200
    assert len(stored_traces(api)) == 1


def test_api_processes_know_the_bind_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --api-processes N the app is built from the environment in each
    process: the bind address must be there for the receiver's auto rule."""
    import uvicorn

    from streamsink import serve

    seen: dict[str, str] = {}

    def fake_run(*args: Any, **kwargs: Any) -> None:  # records instead of serving
        seen.update({k: v for k, v in os.environ.items() if k.startswith("STREAMSINK_")})

    for name in list(os.environ):
        if name.startswith("STREAMSINK_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr(os, "environ", dict(os.environ))  # the test's own copy
    settings = Settings(
        redis_url="unix:///nowhere", auth_token="x", host="192.0.2.10", api_processes=2
    )
    serve._run_api(settings)
    assert seen["STREAMSINK_HOST"] == "192.0.2.10"
