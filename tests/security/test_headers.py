"""Sink header rules: no CR/LF/NUL, no hop-by-hop headers, no overriding
Content-Length, Host or the body's own headers; sensitive values redacted in
every answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from .conftest import SINK_URL, new_sink, new_stream

REFUSED = [
    ("X-Inject", "a\r\nX-Evil: 1"),
    ("X-Inject", "a\nb"),
    ("X-Nul", "a\x00b"),
    ("Bad Name", "v"),
    ("X-Bad:Name", "v"),
    ("Host", "evil.example.com"),
    ("content-length", "0"),
    ("Content-Type", "text/plain"),
    ("Content-Encoding", "gzip"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "close"),
    ("Keep-Alive", "timeout=5"),
    ("Upgrade", "h2c"),
    ("TE", "trailers"),
    ("Trailer", "X"),
]


@pytest.mark.parametrize(("name", "value"), REFUSED)
def test_refused_headers(make_client: Callable[..., TestClient], name: str, value: str) -> None:
    client = make_client()
    stream = new_stream(client)
    body = {"type": "otelTracing", "config": {"url": SINK_URL, "headers": {name: value}}}
    assert client.post(f"/api/v1/stream/{stream}/sink", json=body).status_code == 422
    sink = new_sink(client, stream)
    r = client.patch(
        f"/api/v1/stream/{stream}/sink/{sink['id']}/headers", json={"headers": {name: value}}
    )
    assert r.status_code == 422


def test_sensitive_values_are_never_returned(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    stream = new_stream(client)
    secrets = {
        "Authorization": "Bearer s3cr3t-a",
        "X-Api-Key": "s3cr3t-b",
        "X-Auth-Token": "s3cr3t-c",
        "X-Plain": "visible",
    }
    sink = new_sink(client, stream, config={"url": SINK_URL, "headers": secrets})
    base = f"/api/v1/stream/{stream}/sink/{sink['id']}"
    answers = [
        sink,
        client.get(base).json(),
        client.get(f"/api/v1/stream/{stream}/sink").json(),
        client.get(f"{base}/headers").json(),
        client.patch(f"{base}/headers", json={"headers": {"X-Secret": "s3cr3t-d"}}).json(),
    ]
    for answer in answers:
        assert "s3cr3t" not in str(answer)
    assert "visible" in str(answers[1])
    assert set(answers[3]["sensitive"]) == {"Authorization", "X-Api-Key", "X-Auth-Token"}
