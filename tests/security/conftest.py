"""An API app on a fresh Redis database with chosen settings."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.settings import Settings

TOKEN = "tok-security"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SINK_URL = "https://collector.example.com/v1/traces"


@pytest.fixture
def make_client(redis_client: redis.Redis) -> Iterator[Callable[..., TestClient]]:
    opened: list[TestClient] = []

    def make(headers: dict[str, str] | None = AUTH, **settings: Any) -> TestClient:
        settings.setdefault("auth_token", TOKEN)
        app = create_app(Settings(**settings), redis_client)
        client = TestClient(app, headers=headers or {}, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def new_stream(client: TestClient, uid: str = "s") -> str:
    r = client.post("/api/v1/stream", json={"name": uid, "uid": uid})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def new_sink(client: TestClient, stream: str, **fields: Any) -> dict[str, Any]:
    body = {"type": "otelTracing", "config": {"url": SINK_URL}, **fields}
    r = client.post(f"/api/v1/stream/{stream}/sink", json=body)
    assert r.status_code == 201, r.text
    return r.json()
