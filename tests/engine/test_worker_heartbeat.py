"""``/health`` of an idle, healthy install is ``ok`` (issue 11 item 12): the
worker heartbeats on a timer, not only when it takes a job, and RQ's own
record of it (``rq info``, ``Worker.all``) shows the same heartbeat."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from rq import Worker

from streamsink.api.routes import ops

from .conftest import Api, Workers

STALE = 4.0  # seconds: the staleness limit for this test (60 in production)


def test_an_idle_worker_keeps_health_ok(
    api: Api, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "WORKER_STALE_SECS", STALE)
    workers.start()
    assert api.http.get("/health").json()["status"] == "ok"
    time.sleep(STALE + 1.5)  # idle: no event, no job
    health = api.http.get("/health").json()
    assert health["status"] == "ok", health
    [worker] = Worker.all(connection=api.redis)
    last = worker.last_heartbeat
    assert last is not None
    age = (datetime.now(UTC) - last.replace(tzinfo=UTC)).total_seconds()
    assert age < STALE
    assert api.redis.ttl(worker.key) > 60  # RQ's key is kept alive too


def test_a_stopped_worker_makes_health_degraded(
    api: Api, workers: Workers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "WORKER_STALE_SECS", STALE)
    proc = workers.start()
    workers.kill(proc)  # SIGKILL: no death registered, heartbeats stop
    time.sleep(STALE + 0.5)
    health = api.http.get("/health").json()
    assert health["status"] == "degraded"
    assert "heartbeat" in health["detail"]
