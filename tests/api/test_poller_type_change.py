"""A sink turned from ``poller`` into another type loses its poller tokens at
once (the current one and one still in its rotation grace), and turned
``poller`` again it gets a new token, never an old one back. Driven by the
official svix SDK against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from svix.api import StreamIn, StreamSinkIn, StreamSinkPatch, Svix
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import RotatePollerTokenIn

from streamsink.settings import Settings
from tests.helpers.sdk_server import sdk, serve_api

from .util import SINK_URL, TOKEN

POLLER = StreamSinkIn.model_validate({"type": "poller", "config": {}, "uid": "pull"})
OTEL = StreamSinkIn.model_validate(
    {"type": "otelTracing", "config": {"url": SINK_URL}, "uid": "pull"}
)
HTTP = StreamSinkIn.model_validate({"type": "http", "config": {"url": SINK_URL}, "uid": "pull"})


@pytest.fixture
def server_url(redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    with serve_api(Settings(auth_token=TOKEN, data_dir=tmp_path / "data"), redis_client) as url:
        yield url


def status_of(call: object) -> int:
    assert callable(call)
    try:
        call()
    except HttpError as exc:
        return int(exc.status_code)
    except HTTPValidationError:
        return 422
    return 200


def reads(server_url: str, token: str, stream: str, sink: str) -> int:
    """The status of the poller token's two reads of its sink (the same for both)."""
    poller = sdk(server_url, token)
    got = {
        status_of(lambda: poller.streaming.sink.get(stream, sink)),
        status_of(lambda: poller.streaming.events.get(stream, sink)),
    }
    assert len(got) == 1, got
    return got.pop()


@pytest.mark.parametrize("other", [OTEL, HTTP], ids=["otelTracing", "http"])
def test_poller_tokens_end_when_the_sink_changes_type(
    server_url: str, redis_client: redis.Redis, other: StreamSinkIn
) -> None:
    admin: Svix = sdk(server_url, TOKEN)
    auth = admin.authentication
    stream = admin.streaming.stream.create(StreamIn(name="s")).id
    sink = admin.streaming.sink.create(stream, POLLER).id
    graced = auth.get_stream_poller_token(stream, sink).token
    current = auth.rotate_stream_poller_token(
        stream, sink, RotatePollerTokenIn(old_token_expiry=3600)
    ).token
    assert reads(server_url, graced, stream, sink) == 200
    assert reads(server_url, current, stream, sink) == 200

    # PATCH can not change a type (422) and leaves the tokens be
    patch = StreamSinkPatch.model_validate({"type": other.type})
    assert status_of(lambda: admin.streaming.sink.patch(stream, sink, patch)) == 422
    assert reads(server_url, current, stream, sink) == 200

    # PUT replaces the sink with one of another type: its tokens are refused at once
    assert admin.streaming.sink.upsert(stream, sink, other).type == other.type
    assert reads(server_url, current, stream, sink) == 401
    assert reads(server_url, graced, stream, sink) == 401
    assert status_of(lambda: auth.get_stream_poller_token(stream, sink)) == 409
    assert not redis_client.keys("ss:token:*")  # nothing of them left to revive

    # turned poller again: a new token; the old ones stay dead
    assert admin.streaming.sink.upsert(stream, "pull", POLLER).type == "poller"
    fresh = auth.get_stream_poller_token(stream, sink).token
    assert fresh not in (graced, current)
    assert auth.get_stream_poller_token(stream, sink).token == fresh
    assert reads(server_url, fresh, stream, sink) == 200
    assert reads(server_url, current, stream, sink) == 401
    assert reads(server_url, graced, stream, sink) == 401
    rotated = auth.rotate_stream_poller_token(
        stream, sink, RotatePollerTokenIn(old_token_expiry=0)
    ).token
    assert rotated not in (graced, current, fresh)
    assert reads(server_url, rotated, stream, sink) == 200
    assert reads(server_url, fresh, stream, sink) == 401


def test_a_sink_that_never_had_a_token_changes_type_cleanly(
    server_url: str, redis_client: redis.Redis
) -> None:
    admin: Svix = sdk(server_url, TOKEN)
    stream = admin.streaming.stream.create(StreamIn(name="s")).id
    sink = admin.streaming.sink.create(stream, POLLER).id
    admin.streaming.sink.upsert(stream, sink, OTEL)
    assert not redis_client.keys("ss:poller:*") and not redis_client.keys("ss:token:*")
    admin.streaming.sink.upsert(stream, sink, POLLER)
    token = admin.authentication.get_stream_poller_token(stream, sink).token
    assert reads(server_url, token, stream, sink) == 200
