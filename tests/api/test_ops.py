"""/metrics in Prometheus format (token required) and its Redis-backed figures."""

from __future__ import annotations

from typing import Any

import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from streamsink.storage import metrics

from .util import events_body


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_need_a_token(client: TestClient) -> None:
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401


def test_metrics_count_ingested_events_and_show_live_gauges(
    client: TestClient, stream: dict[str, Any], sink: dict[str, Any]
) -> None:
    assert (
        client.post(f"/api/v1/stream/{stream['id']}/events", json=events_body(7)).status_code == 202
    )
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = _samples(r.text)
    assert samples[("streamsink_events_ingested_total", ())] == 7
    assert samples[("streamsink_sinks", (("status", "enabled"),))] == 1
    key = ("streamsink_queue_depth", (("queue", "deliver"), ("state", "queued")))
    assert samples[key] == 1  # one kick, no worker
    assert samples[("streamsink_workers", ())] == 0


def test_worker_side_figures_are_exported(client: TestClient, redis_client: redis.Redis) -> None:
    pipe = redis_client.pipeline()
    metrics.inc(pipe, "spans_delivered", 5, sink="sink_a")
    metrics.inc(pipe, "delivery_failures", 1, **{"class": "retryable"})
    metrics.observe(pipe, "delivery_duration_seconds", 0.03)
    metrics.observe(pipe, "delivery_duration_seconds", 7.0)
    pipe.execute()
    samples = _samples(client.get("/metrics").text)
    assert samples[("streamsink_spans_delivered_total", (("sink", "sink_a"),))] == 5
    assert samples[("streamsink_delivery_failures_total", (("class", "retryable"),))] == 1
    hist = "streamsink_delivery_duration_seconds"
    assert samples[(hist + "_bucket", (("le", "0.025"),))] == 0
    assert samples[(hist + "_bucket", (("le", "0.05"),))] == 1
    assert samples[(hist + "_bucket", (("le", "+Inf"),))] == 2
    assert samples[(hist + "_count", ())] == 2
    assert abs(samples[(hist + "_sum", ())] - 7.03) < 1e-9
