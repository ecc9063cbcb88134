"""``api.middleware.idempotency`` bounds: a stored answer expires with the TTL
and holds at most ``MAX_STORED_BYTES`` of body; a larger answer is not kept
(real Redis)."""

from __future__ import annotations

import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from streamsink.api.middleware.idempotency import (
    KEY_PREFIX,
    MAX_STORED_BYTES,
    IdempotencyMiddleware,
)
from streamsink.settings import Settings

TOKEN = "tok-a"


def _client(redis_client: redis.Redis, runs: list[int]) -> TestClient:
    async def sized(request: Request) -> Response:
        runs.append(1)
        size = int(request.query_params["size"])
        return Response(b"x" * size, status_code=200, media_type="text/plain")

    app = Starlette(routes=[Route("/api/sized", sized, methods=["POST"])])
    settings = Settings(auth_token=TOKEN, idempotency_ttl_secs=600)
    return TestClient(IdempotencyMiddleware(app, settings, redis_client))


def _h(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key}


def test_answers_up_to_the_bound_are_stored_with_the_ttl_larger_ones_not(
    redis_client: redis.Redis,
) -> None:
    runs: list[int] = []
    with _client(redis_client, runs) as client:
        small = client.post(f"/api/sized?size={MAX_STORED_BYTES}", headers=_h("small"))
        assert small.status_code == 200
        stored = list(redis_client.scan_iter(KEY_PREFIX + "*"))
        assert len(stored) == 1
        assert 0 < redis_client.ttl(stored[0]) <= 600
        assert len(redis_client.get(stored[0])) < MAX_STORED_BYTES + 200

        big = client.post(f"/api/sized?size={MAX_STORED_BYTES + 1}", headers=_h("big"))
        assert big.status_code == 200 and len(big.content) == MAX_STORED_BYTES + 1
        assert list(redis_client.scan_iter(KEY_PREFIX + "*")) == stored  # no claim left
        again = client.post(f"/api/sized?size={MAX_STORED_BYTES + 1}", headers=_h("big"))
        assert again.status_code == 200 and "idempotent-replayed" not in again.headers
        assert len(runs) == 3  # the big one ran twice: nothing kept to replay
