"""Fixtures for the REST API tests: an app on a fresh Redis database and a
TestClient that sends the bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.settings import Settings

from .util import AUTH, TOKEN, sink_body


@pytest.fixture
def settings() -> Settings:
    return Settings(auth_token=f"{TOKEN},second-token", max_body_bytes=256 * 1024)


@pytest.fixture
def client(settings: Settings, redis_client: redis.Redis) -> Iterator[TestClient]:
    app = create_app(settings, redis_client)
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def stream(client: TestClient) -> dict[str, Any]:
    r = client.post("/api/v1/stream", json={"name": "orders", "uid": "orders"})
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def sink(client: TestClient, stream: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"/api/v1/stream/{stream['id']}/sink", json=sink_body(uid="main"))
    assert r.status_code == 201, r.text
    return r.json()
