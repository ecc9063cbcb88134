"""otelTracing ``config.encoding`` / ``config.compression``: create, upsert, patch and
read round-trip them; unknown values and unknown config keys are a 422 naming
them; ``negotiatedEncoding`` shows what ``auto`` found; re-enable and delete
reset the retry state."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.storage import sinks as store_sinks

from .util import SINK_URL, sink_body

S = "/api/v1/stream/orders/sink"


def config(**fields: Any) -> dict[str, Any]:
    return {"url": SINK_URL, **fields}


def test_create_get_put_patch_round_trip(client: TestClient, stream: dict[str, Any]) -> None:
    r = client.post(S, json=sink_body(config=config(encoding="protobuf", compression="gzip")))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["config"]["encoding"] == "protobuf" and out["config"]["compression"] == "gzip"
    sink = out["id"]
    assert client.get(f"{S}/{sink}").json()["config"] == out["config"]
    stored = store_sinks.get_sink(client.app.state.redis, sink)
    assert stored is not None and (stored.encoding, stored.compression) == ("protobuf", "gzip")

    # PATCH one field at a time: the other stays
    out = client.patch(f"{S}/{sink}", json={"config": {"encoding": "json"}}).json()
    assert (out["config"]["encoding"], out["config"]["compression"]) == ("json", "gzip")
    out = client.patch(f"{S}/{sink}", json={"config": {"compression": "none"}}).json()
    assert (out["config"]["encoding"], out["config"]["compression"]) == ("json", "none")
    out = client.patch(f"{S}/{sink}", json={"batchSize": 5}).json()
    assert (out["config"]["encoding"], out["config"]["compression"]) == ("json", "none")

    # PUT replaces the config: given values are kept, absent ones are the defaults
    r = client.put(f"{S}/{sink}", json=sink_body(config=config(compression="gzip")))
    assert r.status_code == 200, r.text
    assert (r.json()["config"]["encoding"], r.json()["config"]["compression"]) == ("auto", "gzip")
    r = client.put(f"{S}/by-uid", json=sink_body(config=config(encoding="protobuf")))
    assert r.status_code == 201 and r.json()["config"]["encoding"] == "protobuf"
    assert client.get(f"{S}/by-uid").json()["config"]["compression"] == "none"
    listed = {s["id"]: s["config"] for s in client.get(S).json()["data"]}
    assert listed[sink]["compression"] == "gzip"
    assert listed[r.json()["id"]]["encoding"] == "protobuf"


def test_null_means_the_default_on_create(client: TestClient, stream: dict[str, Any]) -> None:
    r = client.post(S, json=sink_body(config=config(encoding=None, compression=None)))
    assert r.status_code == 201, r.text
    assert (r.json()["config"]["encoding"], r.json()["config"]["compression"]) == ("auto", "none")


@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        (config(encoding="xml"), ["auto", "json", "protobuf"]),
        (config(encoding="JSON"), ["auto", "json", "protobuf"]),
        (config(compression="br"), ["none", "gzip"]),
        (config(encodng="protobuf"), ["encodng", "did you mean 'encoding'", "compression"]),
        (config(compresion="gzip"), ["compresion", "did you mean 'compression'"]),
        (config(headers={}, format="raw"), ["'format'", "url, headers, encoding, compression"]),
    ],
)
def test_bad_config_is_422_naming_it(
    client: TestClient, stream: dict[str, Any], cfg: dict[str, Any], words: list[str]
) -> None:
    client.post(S, json=sink_body(uid="main"))
    for method, path, body in (
        ("POST", S, sink_body(config=cfg)),
        ("PUT", f"{S}/main", sink_body(config=cfg)),
        ("PUT", f"{S}/new-one", sink_body(config=cfg)),
        ("PATCH", f"{S}/main", {"config": cfg}),
    ):
        r = client.request(method, path, json=body)
        assert r.status_code == 422, (method, r.text)
        detail = r.json()["detail"]
        assert detail[0]["loc"][:2] == ["body", "config"], detail
        text = " ".join(d["msg"] for d in detail)
        for word in words:
            assert word in text, (method, word, text)
    assert client.get(f"{S}/new-one").status_code == 404  # nothing written
    assert client.get(f"{S}/main").json()["config"]["encoding"] == "auto"


def test_patch_unknown_key_beside_valid_ones_changes_nothing(
    client: TestClient, sink: dict[str, Any]
) -> None:
    r = client.patch(f"{S}/main", json={"config": {"encoding": "protobuf", "gzip": True}})
    assert r.status_code == 422 and "'gzip'" in r.text
    assert client.get(f"{S}/main").json()["config"]["encoding"] == "auto"


def test_negotiated_encoding_shown_and_forgotten_on_change(
    client: TestClient, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    assert client.get(f"{S}/main").json()["negotiatedEncoding"] is None
    store_sinks.update_sink_state(redis_client, sink["id"], negotiated_encoding="protobuf")
    assert client.get(f"{S}/main").json()["negotiatedEncoding"] == "protobuf"
    # unrelated changes keep it
    out = client.patch(f"{S}/main", json={"batchSize": 3, "config": {"compression": "gzip"}})
    assert out.json()["negotiatedEncoding"] == "protobuf"
    # a new url: another receiver, negotiate again
    out = client.patch(f"{S}/main", json={"config": {"url": "https://other.example.com/v1/traces"}})
    assert out.json()["negotiatedEncoding"] is None
    store_sinks.update_sink_state(redis_client, sink["id"], negotiated_encoding="protobuf")
    # an explicit encoding: nothing negotiated
    out = client.patch(f"{S}/main", json={"config": {"encoding": "json"}}).json()
    assert out["negotiatedEncoding"] is None
    stored = store_sinks.get_sink(redis_client, sink["id"])
    assert stored is not None and stored.negotiated_encoding is None


def test_openapi_documents_encoding_compression_and_negotiated(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("OtelTracingConfigIn", "OtelTracingConfigPatch"):
        props = schemas[name]["properties"]
        assert {"url", "headers", "encoding", "compression"} <= set(props)
        assert schemas[name]["additionalProperties"] is False
        assert "415" in props["encoding"]["description"]
    text = str(schemas["OtelTracingConfigIn"]["properties"]["encoding"])
    assert all(v in text for v in ("auto", "json", "protobuf"))
    assert "negotiatedEncoding" in schemas["StreamSinkOut"]["properties"]
    assert {"encoding", "compression"} <= set(schemas["OtelTracingConfigOut"]["properties"])


def test_reenable_and_delete_reset_the_retry_state(
    client: TestClient, sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    key = store_sinks.retry_state_key(sink["id"])
    assert store_sinks.note_failure(redis_client, sink["id"], count=True, now_ms=1000) == (1, 1000)
    assert store_sinks.note_failure(redis_client, sink["id"], count=False, now_ms=5000) == (1, 1000)
    assert store_sinks.note_failure(redis_client, sink["id"], count=True, now_ms=9000) == (2, 1000)
    client.patch(f"{S}/main", json={"batchSize": 4})
    assert redis_client.exists(key)  # other edits keep it
    store_sinks.update_sink_state(redis_client, sink["id"], status="disabled", failure_reason="x")
    assert client.patch(f"{S}/main", json={"status": "enabled"}).json()["status"] == "enabled"
    assert not redis_client.exists(key)  # a revived sink starts its schedule afresh
    store_sinks.note_failure(redis_client, sink["id"], count=True, now_ms=1000)
    assert client.delete(f"{S}/main").status_code == 204
    assert not redis_client.exists(key)


def test_retry_state_of_an_older_version_is_taken_over(
    sink: dict[str, Any], redis_client: redis.Redis
) -> None:
    """A counter left by a version that kept ``ss:retries:{sink}`` as a string."""
    redis_client.set(store_sinks.retry_state_key(sink["id"]), 3)
    assert store_sinks.note_failure(redis_client, sink["id"], count=True, now_ms=7) == (4, 7)
