"""Fixtures for the per-module unit tests: the REST API on a fresh Redis
database (to set up streams, sinks and events the way users do) and a
delivery engine on that database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.app import create_app
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings

TOKEN = "unit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Api:
    """The REST API through a TestClient, with the calls the unit tests need."""

    def __init__(self, client: TestClient) -> None:
        self.http = client

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        r = self.http.request(method, f"/api/v1{path}", **kw)
        assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def stream(self, uid: str = "s") -> str:
        return self.call("POST", "/stream", 201, json={"name": uid, "uid": uid})["id"]

    def sink(self, stream: str, url: str, code: str | None = None, **fields: Any) -> str:
        body = {"type": "otelTracing", "config": {"url": url}, **fields}
        sink_id = self.call("POST", f"/stream/{stream}/sink", 201, json=body)["id"]
        if code is not None:
            path = f"/stream/{stream}/sink/{sink_id}/transformation"
            self.call("PATCH", path, 200, json={"code": code})
        return sink_id

    def post(
        self, stream: str, count: int, start: int = 0, event_type: str = "e", per: int = 0
    ) -> None:
        """POST ``count`` events, ``per`` a request (all in one when 0): each
        request is one log entry, the unit a trim removes."""
        per = per or count
        for first in range(start, start + count, per):
            events = [
                {"eventType": event_type, "payload": f'{{"seq": {i}}}'}
                for i in range(first, min(first + per, start + count))
            ]
            self.call("POST", f"/stream/{stream}/events", 202, json={"events": events})

    def get_sink(self, stream: str, sink: str) -> dict[str, Any]:
        return self.call("GET", f"/stream/{stream}/sink/{sink}", 200)

    def attempts(self, stream: str, sink: str) -> list[dict[str, Any]]:
        return self.call("GET", f"/stream/{stream}/sink/{sink}/attempt", 200)["data"]


@pytest.fixture
def api(redis_url: str, redis_client: redis.Redis) -> Iterator[Api]:
    settings = Settings(auth_token=TOKEN, redis_url=redis_url)
    app = create_app(settings, redis_client)
    with TestClient(app, headers=AUTH, raise_server_exceptions=True) as client:
        yield Api(client)


@pytest.fixture
def engine_factory(redis_client: redis.Redis) -> Iterator[Any]:
    """``make(**settings) -> Engine`` on the test's database; closed at the end."""
    made: list[Engine] = []

    def make(**settings: Any) -> Engine:
        engine = Engine(redis_client, Settings(auth_token=TOKEN, **settings))
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
