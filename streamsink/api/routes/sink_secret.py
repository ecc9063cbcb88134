"""Routes of ``/stream/{stream_id}/sink/{sink_id}/secret``: an ``http`` sink's
signing secret (Svix's ``streaming.sink.get_secret`` / ``rotate_secret``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from pydantic import Field

from streamsink.api.deps import RedisDep, SettingsDep
from streamsink.api.params import SinkIdPath, StreamIdPath
from streamsink.api.responses import SINK_ERRORS
from streamsink.api.sink_config import KEY_DOC, SinkKey
from streamsink.api.wire import WireModel
from streamsink.errors import BadRequest, NotFound
from streamsink.storage import sink_secrets
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams
from streamsink.storage.sinks import SinkRecord

router = APIRouter(tags=["Stream Sink"])


class SinkSecretOut(WireModel):
    key: str = Field(description="the http sink's signing secret (`whsec_...`)")


class SinkSecretRotateIn(WireModel):
    """Svix's ``EndpointSecretRotateIn``."""

    key: SinkKey | None = Field(default=None, description=KEY_DOC)
    grace_period_seconds: int | None = Field(
        default=None,
        ge=0,
        le=7 * 86400,
        description="how long the old secret keeps signing beside the new one"
        " (0 to 7 days; default STREAMSINK_SECRET_ROTATION_GRACE, 24 h)",
    )


def _http_sink(client: Any, stream_id: str, sink_id: str) -> SinkRecord:
    sid = store_streams.require_stream(client, stream_id).id
    record = store_sinks.require_stream_sink(client, sid, sink_id)
    if record.type != "http":
        raise BadRequest(
            f"sink {sink_id!r} is an {record.type!r} sink: only http sinks have a signing secret",
            code="not_http_sink",
        )
    return record


def _gone(sink_id: str) -> NotFound:
    return NotFound(f"sink {sink_id!r} not found")


@router.get(
    "/stream/{stream_id}/sink/{sink_id}/secret",
    operation_id="v1.streaming.sink.get-secret",
    response_model=SinkSecretOut,
    responses=SINK_ERRORS,
)
def get_sink_secret(
    stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep
) -> SinkSecretOut:
    """The http sink's signing secret (``whsec_...``): verify its requests with it,
    e.g. ``svix.webhooks.Webhook(key).verify(body, headers)``."""
    record = _http_sink(client, stream_id, sink_id)
    key = sink_secrets.current_secret(client, record.id)
    if key is None:
        raise _gone(sink_id)
    return SinkSecretOut(key=key)


@router.post(
    "/stream/{stream_id}/sink/{sink_id}/secret/rotate",
    operation_id="v1.streaming.sink.rotate-secret",
    response_model=SinkSecretOut,
    responses=SINK_ERRORS,
)
def rotate_sink_secret(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    client: RedisDep,
    settings: SettingsDep,
    body: SinkSecretRotateIn | None = Body(default=None),  # noqa: B008
) -> SinkSecretOut:
    """Sign with ``key`` (or a new random secret) from now on; the old secret keeps
    signing beside it (a second ``v1,`` signature) for ``gracePeriodSeconds``
    (default ``STREAMSINK_SECRET_ROTATION_GRACE``, 24 h), then drops off.
    Answers the new secret (``{key}``, as the svix SDK reads it)."""
    record = _http_sink(client, stream_id, sink_id)
    body = body or SinkSecretRotateIn()
    grace = body.grace_period_seconds
    grace_s = settings.secret_rotation_grace if grace is None else grace
    key = sink_secrets.rotate_secret(client, record.id, body.key, int(grace_s * 1000))
    if key is None:
        raise _gone(sink_id)
    return SinkSecretOut(key=key)
