"""Sink URLs at the API: metadata and link-local refused always, private
addresses refused when STREAMSINK_BLOCK_PRIVATE_DESTINATIONS is set."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.settings import Settings

AUTH = {"Authorization": "Bearer tok"}


def _client(redis_client: redis.Redis, **settings: object) -> TestClient:
    app = create_app(Settings(auth_token="tok", **settings), redis_client)
    return TestClient(app, headers=AUTH, raise_server_exceptions=False)


@pytest.fixture
def open_api(redis_client: redis.Redis) -> Iterator[TestClient]:
    with _client(redis_client) as client:
        assert client.post("/api/v1/stream", json={"name": "s", "uid": "s"}).status_code == 201
        yield client


@pytest.fixture
def closed_api(redis_client: redis.Redis) -> Iterator[TestClient]:
    with _client(redis_client, block_private_destinations=True) as client:
        assert client.post("/api/v1/stream", json={"name": "s", "uid": "s"}).status_code == 201
        yield client


def _sink(url: str) -> dict[str, object]:
    return {"type": "otelTracing", "config": {"url": url}}


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/v1/traces",
        "http://metadata.google.internal/computeMetadata/v1/",
        "ftp://collector.example.com/v1/traces",
    ],
)
def test_always_refused(open_api: TestClient, url: str) -> None:
    r = open_api.post("/api/v1/stream/s/sink", json=_sink(url))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] == "url"


def test_private_allowed_by_default(open_api: TestClient) -> None:
    r = open_api.post("/api/v1/stream/s/sink", json=_sink("http://10.0.0.7:4318/v1/traces"))
    assert r.status_code == 201, r.text


def test_private_refused_when_blocked(closed_api: TestClient) -> None:
    for url in ("http://10.0.0.7:4318/v1/traces", "http://127.0.0.1:4318/v1/traces"):
        r = closed_api.post("/api/v1/stream/s/sink", json=_sink(url))
        assert r.status_code == 422, r.text
        assert "private" in r.json()["detail"][0]["msg"]
    ok = closed_api.post("/api/v1/stream/s/sink", json=_sink("https://otel.example.com/v1/traces"))
    assert ok.status_code == 201
    sink_id = ok.json()["id"]
    patched = closed_api.patch(
        f"/api/v1/stream/s/sink/{sink_id}",
        json={"type": "otelTracing", "config": {"url": "http://192.168.1.2/v1/traces"}},
    )
    assert patched.status_code == 422
    put = closed_api.put(f"/api/v1/stream/s/sink/{sink_id}", json=_sink("http://[::1]:4318/"))
    assert put.status_code == 422
