"""Helpers of the ``http`` sink delivery tests: a receiver that verifies each
request with the real ``svix`` library, and running the engine in this process."""

from __future__ import annotations

import threading
from typing import Any

import orjson
import redis
from svix.webhooks import Webhook, WebhookVerificationError

from streamsink.delivery import job as delivery
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from tests.helpers.receiver_server import Answer, AnswerLike, Recorded

from .conftest import Api

SIGNED = ("svix-id", "svix-timestamp", "svix-signature")


class Verifier:
    """Answers of a receiver that checks each request's signature with
    ``svix.webhooks.Webhook(secret).verify`` (401 when it fails), then plays
    the queued answers (default 200)."""

    def __init__(self, secrets: list[str], answers: list[AnswerLike] | None = None) -> None:
        self.secrets = secrets
        self.answers = list(answers or [])
        self.verified: list[Recorded] = []
        self.refused: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, req: Recorded) -> AnswerLike:
        for secret in self.secrets:
            try:
                Webhook(secret).verify(req.body, req.headers)
            except WebhookVerificationError as exc:
                with self._lock:
                    self.refused.append(f"{secret[:10]}: {exc}")
                return Answer(401, b"bad signature", content_type="text/plain")
        with self._lock:
            self.verified.append(req)
            return self.answers.pop(0) if self.answers else 200


def run(redis_client: redis.Redis, stream: str, sink_id: str, **settings: Any) -> None:
    """Deliver what the sink owes, in this process (immediate retries)."""
    engine = Engine(redis_client, Settings(retry_schedule="0,0,0", **settings))
    try:
        delivery.process_sink(engine, stream, sink_id)
    finally:
        engine.close()


def http_sink(api: Api, stream: str, url: str, **fields: Any) -> dict[str, Any]:
    config = fields.pop("config", {})
    body = {"type": "http", "config": {"url": url, **config}, **fields}
    return api.call("POST", f"/stream/{stream}/sink", 201, json=body)


def secret_of(api: Api, stream: str, sink_id: str) -> str:
    key = api.call("GET", f"/stream/{stream}/sink/{sink_id}/secret", 200)["key"]
    assert isinstance(key, str) and key.startswith("whsec_")
    return key


def events(req: Recorded) -> list[dict[str, Any]]:
    return orjson.loads(req.body)
