"""An ``Idempotency-Key`` reused with a different body is refused with 422
``idempotency_conflict`` (as Stripe does), never answered with the first answer."""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import redis
from fastapi.testclient import TestClient

from streamsink.api.middleware.idempotency import KEY_PREFIX
from streamsink.storage import eventlog

from .util import events_body

E = "/api/v1/stream/orders/events"


def _log(redis_client: redis.Redis, stream_id: str) -> list[Any]:
    return eventlog.parse_entries(redis_client.xrange(f"ss:log:{stream_id}"))


def _assert_conflict(r: Any) -> None:
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "idempotency_conflict" and "different" in r.json()["detail"]
    assert "idempotent-replayed" not in r.headers


def test_same_key_other_events_is_a_conflict(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    headers = {"Idempotency-Key": "k1"}
    assert client.post(E, json=events_body(2), headers=headers).status_code == 202
    _assert_conflict(client.post(E, json=events_body(3), headers=headers))
    _assert_conflict(client.post(E, json=events_body(2, "other"), headers=headers))
    assert len(_log(redis_client, stream["id"])) == 2
    # The same body is still replayed, and gzip of the same body is the same body.
    again = client.post(E, json=events_body(2), headers=headers)
    assert again.status_code == 202 and again.headers.get("idempotent-replayed") == "true"
    zipped = gzip.compress(orjson.dumps(events_body(2)))
    headers_gz = {**headers, "content-type": "application/json", "content-encoding": "gzip"}
    r = client.post(E, content=zipped, headers=headers_gz)
    assert r.status_code == 202 and r.headers.get("idempotent-replayed") == "true", r.text
    assert len(_log(redis_client, stream["id"])) == 2


def test_same_key_other_resource_body_is_a_conflict(client: TestClient) -> None:
    headers = {"Idempotency-Key": "create"}
    a = client.post("/api/v1/stream", json={"name": "a", "uid": "a"}, headers=headers)
    assert a.status_code == 201
    _assert_conflict(client.post("/api/v1/stream", json={"name": "b", "uid": "b"}, headers=headers))
    assert client.get("/api/v1/stream/b").status_code == 404
    # A stored error answer is guarded the same way.
    bad = {"Idempotency-Key": "bad"}
    assert client.post("/api/v1/stream", json={"name": 5}, headers=bad).status_code == 422
    _assert_conflict(client.post("/api/v1/stream", json={"name": "ok"}, headers=bad))


def test_a_pending_claim_with_another_body_is_a_conflict_at_once(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    """A duplicate of a request still running waits for its answer; a request
    with another body under that key does not wait: it can never match."""
    from streamsink.api.deps import bearer_token
    from streamsink.api.middleware.idempotency import body_hash, replay_key

    token = bearer_token(client.headers["authorization"])
    rkey = replay_key(token, "POST", E, "busy")
    assert rkey.startswith(KEY_PREFIX)
    running = orjson.dumps(events_body(1))
    redis_client.set(rkey, f"pending:0011:{body_hash(running).decode()}", ex=60)
    r = client.post(E, content=orjson.dumps(events_body(5)), headers={"Idempotency-Key": "busy"})
    _assert_conflict(r)
    assert _log(redis_client, stream["id"]) == []


def test_answers_stored_before_hashes_still_replay(
    client: TestClient, stream: dict[str, Any], redis_client: redis.Redis
) -> None:
    from streamsink.api.deps import bearer_token
    from streamsink.api.middleware.idempotency import replay_key

    token = bearer_token(client.headers["authorization"])
    redis_client.set(replay_key(token, "POST", E, "old"), b"202\napplication/json\n{}", ex=60)
    r = client.post(E, json=events_body(1), headers={"Idempotency-Key": "old"})
    assert r.status_code == 202 and r.headers.get("idempotent-replayed") == "true"
    assert _log(redis_client, stream["id"]) == []
