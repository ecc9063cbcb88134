"""Constants and body builders shared by the API tests."""

from __future__ import annotations

from typing import Any

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SINK_URL = "https://collector.example.com/v1/traces"


def sink_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "otelTracing", "config": {"url": SINK_URL}}
    body.update(overrides)
    return body


def events_body(n: int, event_type: str = "order.created", **extra: Any) -> dict[str, Any]:
    events = [{"eventType": event_type, "payload": f'{{"n": {i}}}'} for i in range(n)]
    return {"events": events, **extra}
