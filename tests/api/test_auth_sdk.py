"""Scoped tokens through the official svix SDK's ``authentication`` calls on a
real uvicorn server on 127.0.0.1; the tokens they give drive SDK clients of
their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from svix.api import (
    CreateStreamEventsIn,
    EventIn,
    OtelTracingConfigIn,
    StreamIn,
    StreamPatch,
    StreamSinkIn,
    Svix,
)
from svix.api.authentication import AuthenticationStreamPortalAccessOptions
from svix.api.streaming_events import StreamingEventsGetOptions
from svix.exceptions import HttpError
from svix.models import RotatePollerTokenIn, StreamPortalAccessIn, StreamTokenExpireIn

from streamsink.settings import Settings
from tests.helpers.redis_dump import dump_all
from tests.helpers.sdk_server import sdk, serve_api

from .util import TOKEN

SINK_URL = "https://collector.example.com/v1/traces"


@pytest.fixture
def server_url(redis_client: redis.Redis, tmp_path: Path) -> Iterator[str]:
    """A real uvicorn server on 127.0.0.1 (free port) in a background thread."""
    with serve_api(Settings(auth_token=TOKEN, data_dir=tmp_path / "data"), redis_client) as url:
        yield url


def client(server_url: str, token: str = TOKEN) -> Svix:
    return sdk(server_url, token)


def refused(call: object, status: int) -> None:
    assert callable(call)
    with pytest.raises(HttpError) as err:
        call()
    assert err.value.status_code == status, err.value


@pytest.fixture
def admin(server_url: str) -> Svix:
    return client(server_url)


def test_stream_portal_access_logout_and_expire_all(server_url: str, admin: Svix) -> None:
    auth = admin.authentication
    a = admin.streaming.stream.create(StreamIn(name="a", uid="a")).id
    b = admin.streaming.stream.create(StreamIn(name="b", uid="b")).id
    out = auth.stream_portal_access("a", StreamPortalAccessIn(expiry=3600, session_id="s1"))
    assert out.token.startswith("sk_portal_")
    assert out.url == f"{server_url}/portal/{a}#key={out.token}"

    portal = client(server_url, out.token)
    stream = portal.streaming.stream
    assert stream.get(a).id == a and stream.get("a").id == a
    assert stream.patch(a, StreamPatch(description="renamed")).name == "renamed"
    sink = portal.streaming.sink.create(
        a, StreamSinkIn.model_validate({"type": "otelTracing", "config": {"url": SINK_URL}})
    )
    assert [s.id for s in portal.streaming.sink.list(a).data] == [sink.id]
    refused(lambda: stream.get(b), 403)
    refused(lambda: stream.list(), 403)
    refused(lambda: stream.delete(a), 403)
    refused(lambda: stream.create(StreamIn(name="c")), 403)
    events = CreateStreamEventsIn(events=[EventIn(event_type="x", payload="{}")])
    refused(lambda: portal.streaming.events.create(a, events), 403)
    refused(lambda: portal.authentication.stream_portal_access(a, StreamPortalAccessIn()), 403)
    refused(lambda: portal.authentication.stream_expire_all(a, StreamTokenExpireIn()), 403)

    portal.authentication.stream_logout()
    refused(lambda: stream.get(a), 401)
    refused(lambda: portal.authentication.stream_logout(), 401)
    refused(lambda: admin.authentication.stream_logout(), 403)  # not a stream token

    # expire-all: by session, then the rest
    s1 = client(
        server_url, auth.stream_portal_access(a, StreamPortalAccessIn(session_id="s1")).token
    )
    s2 = client(
        server_url, auth.stream_portal_access(a, StreamPortalAccessIn(session_id="s2")).token
    )
    in_b = client(server_url, auth.stream_portal_access(b, StreamPortalAccessIn()).token)
    auth.stream_expire_all(a, StreamTokenExpireIn(session_ids=["s1"]))
    refused(lambda: s1.streaming.stream.get(a), 401)
    assert s2.streaming.stream.get(a).id == a
    auth.stream_expire_all("a", StreamTokenExpireIn())
    refused(lambda: s2.streaming.stream.get(a), 401)
    assert in_b.streaming.stream.get(b).id == b


def test_read_only_portal_token(server_url: str, admin: Svix) -> None:
    """``readOnly`` is not in the SDK's StreamPortalAccessIn: sent as JSON."""
    a = admin.streaming.stream.create(StreamIn(name="a")).id
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        r = http.post(f"/api/v1/auth/stream-portal-access/{a}", json={"readOnly": True})
    assert r.status_code == 200, r.text
    portal = client(server_url, r.json()["token"])
    assert portal.streaming.stream.get(a).id == a
    assert portal.streaming.sink.list(a).data == []
    sink_in = StreamSinkIn.model_validate({"type": "otelTracing", "config": {"url": SINK_URL}})
    refused(lambda: portal.streaming.sink.create(a, sink_in), 403)
    refused(lambda: portal.streaming.stream.patch(a, StreamPatch(description="x")), 403)


def test_poller_tokens(server_url: str, admin: Svix) -> None:
    a = admin.streaming.stream.create(StreamIn(name="a")).id
    config = OtelTracingConfigIn(url=SINK_URL)
    sink_in = StreamSinkIn.model_validate({"type": "otelTracing", "config": config.model_dump()})
    poller_in = StreamSinkIn.model_validate({"type": "poller", "config": {}})
    sink = admin.streaming.sink.create(a, poller_in).id
    other = admin.streaming.sink.create(a, sink_in).id
    events = CreateStreamEventsIn(events=[EventIn(event_type="order.created", payload="{}")])
    admin.streaming.events.create(a, events)

    auth = admin.authentication
    refused(lambda: auth.get_stream_poller_token(a, other), 409)  # an otelTracing sink
    refused(lambda: auth.rotate_stream_poller_token(a, other, RotatePollerTokenIn()), 409)
    first = auth.get_stream_poller_token(a, sink)
    assert first.token.startswith("sk_poll_") and first.expires_at is None
    assert auth.get_stream_poller_token(a, sink).token == first.token

    poller = client(server_url, first.token)
    start = poller.streaming.events.get(a, sink)  # a poller sink's position, no events yet
    assert start.data == []
    page = poller.streaming.events.get(a, sink, StreamingEventsGetOptions(iterator=start.iterator))
    assert [e.event_type for e in page.data] == ["order.created"]
    assert poller.streaming.sink.get(a, sink).id == sink
    refused(lambda: poller.streaming.events.get(a, other), 403)
    refused(lambda: poller.streaming.sink.get(a, other), 403)
    refused(lambda: poller.streaming.sink.list(a), 403)
    refused(lambda: poller.streaming.stream.get(a), 403)
    refused(lambda: poller.authentication.get_stream_poller_token(a, sink), 403)

    second = auth.rotate_stream_poller_token(a, sink, RotatePollerTokenIn(old_token_expiry=60))
    assert second.token != first.token and second.id != first.id
    assert auth.get_stream_poller_token(a, sink).token == second.token
    again = StreamingEventsGetOptions(iterator=start.iterator)  # not acknowledged yet
    assert poller.streaming.events.get(a, sink, again).data  # the old one, for a minute more
    assert client(server_url, second.token).streaming.events.get(a, sink, again).data

    third = auth.rotate_stream_poller_token(
        a, sink, RotatePollerTokenIn(old_token_expiry=0, expiry=3600)
    )
    assert third.expires_at is not None and third.expires_at > third.created_at
    refused(lambda: client(server_url, second.token).streaming.sink.get(a, sink), 401)
    assert client(server_url, third.token).streaming.sink.get(a, sink).id == sink

    # a portal token reads (but can not rotate) its stream's poller tokens
    portal = client(server_url, auth.stream_portal_access(a, StreamPortalAccessIn()).token)
    assert portal.authentication.get_stream_poller_token(a, sink).token == third.token
    refused(
        lambda: portal.authentication.rotate_stream_poller_token(a, sink, RotatePollerTokenIn()),
        403,
    )


def test_tokens_minted_by_the_sdk_are_not_kept_in_plain_text(
    server_url: str, admin: Svix, redis_client: redis.Redis
) -> None:
    """The SDK sends an Idempotency-Key on every POST; an answer carrying a token
    is not stored for replays (``Cache-Control: no-store``), so the token's text
    never reaches Redis. The same key twice mints two tokens."""
    a = admin.streaming.stream.create(StreamIn(name="a")).id
    sink_in = StreamSinkIn.model_validate({"type": "poller", "config": {}})
    sink = admin.streaming.sink.create(a, sink_in).id
    auth = admin.authentication
    same = AuthenticationStreamPortalAccessOptions(idempotency_key="same-key")
    minted = [
        auth.stream_portal_access(a, StreamPortalAccessIn(), same).token,
        auth.stream_portal_access(a, StreamPortalAccessIn(), same).token,
        auth.get_stream_poller_token(a, sink).token,
        auth.rotate_stream_poller_token(a, sink, RotatePollerTokenIn()).token,
    ]
    assert len(set(minted)) == 4
    blob = dump_all(redis_client)
    assert b"ss:idem:" in blob  # the SDK's keys were seen (stream and sink creation)
    for token in minted:
        assert token.encode() not in blob and token.split("_", 2)[2].encode() not in blob
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        r = http.post(f"/api/v1/auth/stream-portal-access/{a}", json={})
    assert r.headers["cache-control"] == "no-store"
