"""``api.ingest_core``: the fast lane and the route both append through the
app's one ``Ingest`` (same stored events, same wake-up)."""

from __future__ import annotations

from typing import Any

import fakeredis
import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.api.ingest_core import Ingest
from streamsink.storage import eventlog

from .util import events_body

E = "/api/v1/stream/orders/events"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    real_sync, real_async = Ingest.append, Ingest.append_async

    def sync(self: Ingest, state: Any, stream: str, events: Any) -> str | None:
        seen.append(("route", stream))
        return real_sync(self, state, stream, events)

    async def asyn(self: Ingest, state: Any, stream: str, events: Any) -> str | None:
        seen.append(("lane", stream))
        return await real_async(self, state, stream, events)

    monkeypatch.setattr(Ingest, "append", sync)
    monkeypatch.setattr(Ingest, "append_async", asyn)
    return seen


def test_both_lanes_append_through_ingest(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis, calls: list[Any]
) -> None:
    assert client.app.state.ingest.enabled  # type: ignore[attr-defined]
    assert client.post(E, json=events_body(2)).status_code == 202
    assert client.post(E + "?lane=route", json=events_body(3)).status_code == 202
    assert calls == [("lane", "orders"), ("route", "orders")]
    assert eventlog.length(redis_client, stream["id"]) == 5


def test_missing_stream_falls_to_the_route(client: TestClient, calls: list[Any]) -> None:
    r = client.post("/api/v1/stream/nope/events", json=events_body(1))
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    assert calls == [("lane", "nope"), ("route", "nope")]


def test_no_async_twin_disables_the_lane() -> None:
    assert Ingest(fakeredis.FakeRedis()).enabled is False  # type: ignore[arg-type]
