"""Operations routes: ``GET /health`` and ``GET /api/v1/health`` (Svix's path,
the SDK's ``health.get()``), both without a token, and ``GET /metrics`` (token)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import redis
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import Field

from streamsink.api.deps import require_token
from streamsink.api.wire import WireModel
from streamsink.delivery.scheduling import QUEUE_NAMES
from streamsink.storage.metrics import RedisCollector

router = APIRouter(tags=["Health"])
WORKER_STALE_SECS = 60  # workers heartbeat every 2 s (worker.HEARTBEAT_EVERY), idle or not


class WorkerOut(WireModel):
    name: str
    state: str
    last_heartbeat: datetime | None = None


class HealthOut(WireModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="ok; degraded: no worker has sent a heartbeat lately; unavailable: no Redis"
    )
    redis: bool
    workers: list[WorkerOut] = Field(default_factory=list)
    queue_depth: int | None = None
    detail: str | None = None


@router.get(
    "/health",
    operation_id="health",
    response_model=HealthOut,
    responses={503: {"model": HealthOut}},
)
@router.get(
    "/api/v1/health",
    operation_id="v1.health.get",
    response_model=HealthOut,
    responses={503: {"model": HealthOut}},
)
def health(request: Request) -> JSONResponse:
    """Unauthenticated: Redis reachable (else 503), workers alive with their last
    heartbeat, and the delivery queue depth."""
    from rq import Queue, Worker

    client: redis.Redis = request.app.state.redis
    try:
        client.ping()
        queue_depth = sum(Queue(name, connection=client).count for name in QUEUE_NAMES)
        workers = [
            WorkerOut(name=w.name, state=str(w.get_state()), last_heartbeat=_utc(w.last_heartbeat))
            for w in Worker.all(connection=client)
        ]
    except redis.RedisError as exc:
        out = HealthOut(status="unavailable", redis=False, detail=f"redis: {exc}")
        return JSONResponse(out.model_dump(mode="json", by_alias=True), status_code=503)
    now = datetime.now(UTC)
    alive = [
        w
        for w in workers
        if w.last_heartbeat and (now - w.last_heartbeat).total_seconds() < WORKER_STALE_SECS
    ]
    out = HealthOut(
        status="ok" if alive else "degraded",
        redis=True,
        workers=workers,
        queue_depth=queue_depth,
        detail=None if alive else "no delivery worker has sent a heartbeat lately",
    )
    return JSONResponse(out.model_dump(mode="json", by_alias=True))


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get(
    "/metrics",
    operation_id="metrics",
    dependencies=[Depends(require_token)],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    """Prometheus text format for the whole deployment (figures live in Redis)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector(request.app.state.redis))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
