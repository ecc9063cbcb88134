"""Sink header rules: no CR/LF/NUL, no hop-by-hop headers, no overriding
Content-Length, Host or the body's own headers; sensitive values (credentials
under any vendor's header name) redacted in every answer and never logged."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import redis
from fastapi.testclient import TestClient

from streamsink.delivery import job as delivery
from streamsink.delivery.engine import Engine
from streamsink.settings import Settings
from streamsink.sink_fields import REDACTED, is_sensitive_header
from tests.helpers.receiver_server import Answer, ReceiverServer

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


#: Vendors' credential headers (OTLP backends and APIs): every one is masked.
VENDOR_SECRETS = {
    "x-honeycomb-team": "s3cr3t-honeycomb",
    "signoz-ingestion-key": "s3cr3t-signoz",
    "uptrace-dsn": "https://s3cr3t-uptrace@uptrace.example/1",
    "X-SF-Token": "s3cr3t-splunk",
    "DD-API-KEY": "s3cr3t-datadog",
    "DD-APPLICATION-KEY": "s3cr3t-datadog-app",
    "x-goog-api-key": "s3cr3t-google",
    "lightstep-access-token": "s3cr3t-lightstep",
    "x-langfuse-public-key": "s3cr3t-langfuse",
    "X-Sentry-Auth": "Sentry sentry_key=s3cr3t-sentry",
    "Ocp-Apim-Subscription-Key": "s3cr3t-azure",
    "X-License-Key": "s3cr3t-newrelic",
    "Private-Token": "s3cr3t-gitlab",
    "X-Amz-Security-Token": "s3cr3t-aws",
    "X-Session-Id": "s3cr3t-session",
    "X-Client-Credential": "s3cr3t-credential",
}
#: Headers that carry no secret stay visible.
PLAIN = {
    "X-Honeycomb-Dataset": "visible-dataset",
    "X-Scope-OrgID": "visible-tenant",
    "Accept": "visible-accept",
    "User-Agent": "visible-agent",
    "X-Request-Id": "visible-request",
    "traceparent": "visible-trace",
}


@pytest.mark.parametrize("name", [*VENDOR_SECRETS, "Authorization", "Cookie", "X-Api-Key"])
def test_credential_header_names_are_sensitive(name: str) -> None:
    assert is_sensitive_header(name) and is_sensitive_header(name.upper())


@pytest.mark.parametrize("name", [*PLAIN, "Content-Type", "Keep-Alive", "X-Forwarded-For"])
def test_plain_header_names_stay_visible(name: str) -> None:
    assert not is_sensitive_header(name)


def test_vendor_credentials_are_redacted_in_every_answer(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client()
    stream = new_stream(client)
    headers = VENDOR_SECRETS | PLAIN
    sink = new_sink(client, stream, config={"url": SINK_URL, "headers": headers})
    base = f"/api/v1/stream/{stream}/sink/{sink['id']}"
    shown = client.get(f"{base}/headers").json()
    answers = [
        sink,
        client.get(base).json(),
        client.get(f"/api/v1/stream/{stream}/sink").json(),
        shown,
        client.put(
            base, json={"type": "otelTracing", "config": {"url": SINK_URL, "headers": headers}}
        ).json(),
        client.patch(base, json={"metadata": {"m": "1"}}).json(),
        client.patch(
            f"{base}/headers", json={"headers": {"uptrace-dsn": "https://s3cr3t-2@x/1"}}
        ).json(),
    ]
    for answer in answers:
        assert "s3cr3t" not in str(answer), answer
        assert all(value in str(answer) for value in PLAIN.values()), answer
    assert set(shown["sensitive"]) == set(VENDOR_SECRETS)
    assert all(shown["headers"][name] == REDACTED for name in VENDOR_SECRETS)


def test_vendor_credentials_are_sent_and_never_logged(
    make_client: Callable[..., TestClient],
    redis_client: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real delivery loop, at DEBUG, through a failure then a success: the
    receiver gets each credential, no log record holds one."""
    client = make_client()
    stream = new_stream(client)
    with ReceiverServer([Answer(400, "bad request")]) as receiver:
        url = receiver.traces_url
        sink = new_sink(client, stream, config={"url": url, "headers": VENDOR_SECRETS})
        events = {"events": [{"eventType": "e", "payload": '{"seq": 0}'}]}
        assert client.post(f"/api/v1/stream/{stream}/events", json=events).status_code == 202
        caplog.set_level(logging.DEBUG)
        base = f"/api/v1/stream/{stream}/sink/{sink['id']}"
        engine = Engine(redis_client, Settings())
        try:
            delivery.process_sink(engine, stream, sink["id"])  # 400: disabled
            assert client.get(base).json()["status"] == "disabled"
            assert client.patch(base, json={"status": "enabled"}).status_code == 200
            delivery.process_sink(engine, stream, sink["id"])  # 200
        finally:
            engine.close()
        assert len(receiver.requests) == 2
        for name, value in VENDOR_SECRETS.items():
            assert receiver.requests[-1].headers[name.lower()] == value
    assert caplog.records  # deliveries were logged
    assert "s3cr3t" not in caplog.text
    assert "s3cr3t" not in str(client.get(f"{base}/attempt").json())
