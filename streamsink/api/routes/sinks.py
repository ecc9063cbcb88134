"""Routes of ``/stream/{stream_id}/sink``: CRUD, headers and transformation."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from streamsink.api.deps import RedisDep, SettingsDep
from streamsink.api.errors import compile_failed, validation_error
from streamsink.api.hooks import after_sink_change
from streamsink.api.limits import check_code_size, check_header_count, check_room_for_sink
from streamsink.api.models import (
    EmptyResponse,
    HttpSinkHeadersPatchIn,
    ListResponseStreamSinkOut,
    SinkTransformationOut,
    SinkTransformIn,
    StreamSinkIn,
    StreamSinkOut,
    StreamSinkPatch,
)
from streamsink.api.pagination import ListParams, list_params, list_response, window_for
from streamsink.api.params import SinkIdPath, StreamIdPath, render_sink
from streamsink.api.responses import ERRORS, SINK_ERRORS
from streamsink.api.sink_config import (
    EndpointHeadersOut,
    OtelTracingConfigPatch,
    PollerConfigIn,
    redact_headers,
)
from streamsink.errors import ApiError, CompileError
from streamsink.settings import Settings
from streamsink.sinkhttp.netguard import DestinationPolicy, DestinationRefused
from streamsink.storage import sink_edits as edits
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams

log = logging.getLogger(__name__)
router = APIRouter(tags=["Stream Sink"])


def _stream_id(client: Any, stream_id: str) -> str:
    return store_streams.require_stream(client, stream_id).id


def check_destination(settings: Settings, url: str) -> None:
    """422 when ``STREAMSINK_BLOCK_PRIVATE_DESTINATIONS`` refuses the URL's address."""
    if not settings.block_private_destinations:
        return  # the always-refused addresses are checked by the model
    try:
        DestinationPolicy(block_private=True).check_url(url)
    except DestinationRefused as exc:
        raise validation_error(
            ("body", "config", "url"), f"url not allowed: {exc}", "value_error"
        ) from None


def _checked_stream(
    settings: Settings, client: Any, stream_id: str, body: StreamSinkIn, sink_id: str | None = None
) -> str:
    """The stream's id, once the sink body passes the settings' limits (destination,
    headers per sink, sinks per stream; ``sink_id``: the sink a PUT replaces)."""
    if not isinstance(body.config, PollerConfigIn):  # a poller sink has no url
        check_destination(settings, body.config.url)
        check_header_count(settings, body.config.headers, ("body", "config", "headers"))
    sid = _stream_id(client, stream_id)
    check_room_for_sink(settings, client, sid, sink_id)
    return sid


def _values(body: StreamSinkIn) -> dict[str, Any]:
    """Every configuration field of a create/replace body (defaults included; a
    ``poller`` sink has no url, headers or encoding)."""
    config = body.config
    return {
        "type": body.type,
        "url": getattr(config, "url", None) or "",
        "headers": getattr(config, "headers", None) or {},
        "encoding": getattr(config, "encoding", None) or "auto",
        "compression": getattr(config, "compression", None) or "none",
        "uid": body.uid,
        "status": body.status,
        "batch_size": body.batch_size,
        "max_wait_secs": body.max_wait_secs,
        "event_types": body.event_types or [],
        "channels": body.channels,
        "metadata": body.metadata or {},
        **_http_values(body),
    }


def _http_values(body: StreamSinkIn) -> dict[str, Any]:
    """An http sink's signing secret: ``config.key`` (a new sink without one gets
    a random secret; a replaced sink keeps its own)."""
    key = getattr(body.config, "key", None)
    return {"secret": key} if key else {}


@router.get(
    "/stream/{stream_id}/sink",
    operation_id="v1.streaming.sink.list",
    response_model=ListResponseStreamSinkOut,
    responses=ERRORS,
)
def list_sinks(
    stream_id: StreamIdPath,
    client: RedisDep,
    params: Annotated[ListParams, Depends(list_params)],
) -> dict[str, Any]:
    """List the stream's sinks (creation order)."""
    window = window_for(params, numeric=True)
    page = store_sinks.list_sinks(client, _stream_id(client, stream_id), window)
    return list_response(page, params, render_sink)


@router.post(
    "/stream/{stream_id}/sink",
    status_code=201,
    operation_id="v1.streaming.sink.create",
    response_model=StreamSinkOut,
    responses=SINK_ERRORS,
)
def create_sink(
    stream_id: StreamIdPath, body: StreamSinkIn, client: RedisDep, settings: SettingsDep
) -> StreamSinkOut:
    """Create a sink; it receives the events appended from now on."""
    sid = _checked_stream(settings, client, stream_id, body)
    record = edits.create_sink(client, sid, _values(body))
    return render_sink(record)


@router.get(
    "/stream/{stream_id}/sink/{sink_id}",
    operation_id="v1.streaming.sink.get",
    response_model=StreamSinkOut,
    responses=ERRORS,
)
def get_sink(stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep) -> StreamSinkOut:
    """Get a sink by id or uid."""
    sid = _stream_id(client, stream_id)
    return render_sink(store_sinks.require_stream_sink(client, sid, sink_id))


@router.put(
    "/stream/{stream_id}/sink/{sink_id}",
    operation_id="v1.streaming.sink.upsert",
    response_model=StreamSinkOut,
    responses={**SINK_ERRORS, 201: {"model": StreamSinkOut, "description": "Created"}},
)
def upsert_sink(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    body: StreamSinkIn,
    client: RedisDep,
    settings: SettingsDep,
    request: Request,
    response: Response,
) -> StreamSinkOut:
    """Create (201, with the path as uid) or replace (200) a sink; a replaced sink
    keeps its position, transformation, and (unless given) status and uid."""
    sid = _checked_stream(settings, client, stream_id, body, sink_id)
    record, created = edits.upsert_sink(client, sid, sink_id, _values(body))
    response.status_code = 201 if created else 200
    if not created:
        after_sink_change(request, record)
    return render_sink(record)


@router.patch(
    "/stream/{stream_id}/sink/{sink_id}",
    operation_id="v1.streaming.sink.patch",
    response_model=StreamSinkOut,
    responses=SINK_ERRORS,
)
def patch_sink(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    body: StreamSinkPatch,
    client: RedisDep,
    settings: SettingsDep,
    request: Request,
) -> StreamSinkOut:
    """Change the fields given. ``uid``/``eventTypes``/``channels`` null clear them;
    ``config.headers`` replaces all headers (see also ``/headers``); a new
    ``config.url`` or ``config.encoding`` forgets the negotiated encoding."""
    sent = body.model_fields_set
    changes: dict[str, Any] = {}
    for name in ("status", "batch_size", "max_wait_secs", "metadata"):
        if getattr(body, name) is not None:
            changes[name] = getattr(body, name)
    if "uid" in sent:
        changes["uid"] = body.uid
    if "event_types" in sent:
        changes["event_types"] = body.event_types or []
    if "channels" in sent:
        changes["channels"] = body.channels
    sid = _stream_id(client, stream_id)
    _check_patch_type(body, store_sinks.require_stream_sink(client, sid, sink_id))
    if isinstance(body.config, OtelTracingConfigPatch):
        if body.config.url is not None:
            check_destination(settings, body.config.url)
            changes["url"] = body.config.url
        if body.config.headers is not None:
            check_header_count(settings, body.config.headers, ("body", "config", "headers"))
            changes["headers"] = body.config.headers
        for name in ("encoding", "compression"):
            if getattr(body.config, name) is not None:
                changes[name] = getattr(body.config, name)
    sid = _stream_id(client, stream_id)
    if "encoding" in changes or "compression" in changes:
        _otel_only(client, sid, sink_id, "encoding" if "encoding" in changes else "compression")
    record = edits.patch_sink(client, sid, sink_id, changes)
    after_sink_change(request, record)
    return render_sink(record)


def _check_patch_type(body: StreamSinkPatch, current: store_sinks.SinkRecord) -> None:
    """422 when a PATCH names another ``type`` than the sink's (PUT replaces a
    sink with one of another type), or sends config keys to a ``poller`` sink."""
    if body.type is not None and body.type != current.type:
        raise validation_error(
            ("body", "type"),
            f"the sink is of type {current.type!r}, not {body.type!r}:"
            " PATCH cannot change a sink's type (PUT the whole sink instead)",
        )
    if current.polled and body.config is not None and body.config.model_fields_set:
        given = sorted(body.config.model_fields_set)
        raise validation_error(
            ("body", "config"),
            f"unknown key {given[0]!r} in config: a poller sink's config has no keys",
        )


def _otel_only(client: Any, stream_id: str, sink_id: str, name: str) -> None:
    """422 when ``config.<name>`` (an otelTracing setting) is patched on an http sink."""
    if store_sinks.require_stream_sink(client, stream_id, sink_id).type == "http":
        msg = f"unknown key {name!r} in config: an http sink's keys are url, headers"
        raise validation_error(("body", "config", name), msg, "value_error")


@router.delete(
    "/stream/{stream_id}/sink/{sink_id}",
    status_code=204,
    operation_id="v1.streaming.sink.delete",
    responses=ERRORS,
)
def delete_sink(stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep) -> Response:
    edits.delete_sink(client, _stream_id(client, stream_id), sink_id)
    return Response(status_code=204)


# --- headers ----------------------------------------------------------------------


@router.get(
    "/stream/{stream_id}/sink/{sink_id}/headers",
    operation_id="v1.streaming.sink.headers-get",
    response_model=EndpointHeadersOut,
    responses=ERRORS,
)
def get_sink_headers(
    stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep
) -> EndpointHeadersOut:
    """The sink's extra HTTP headers; sensitive values are redacted and listed."""
    record = store_sinks.require_stream_sink(client, _stream_id(client, stream_id), sink_id)
    return redact_headers(record.headers)


@router.patch(
    "/stream/{stream_id}/sink/{sink_id}/headers",
    operation_id="v1.streaming.sink.headers-patch",
    response_model=EndpointHeadersOut,
    responses=ERRORS,
)
def patch_sink_headers(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    body: HttpSinkHeadersPatchIn,
    client: RedisDep,
    settings: SettingsDep,
) -> EndpointHeadersOut:
    """Set headers; a null value deletes one (names match case-insensitively)."""
    sid = _stream_id(client, stream_id)
    current = store_sinks.require_stream_sink(client, sid, sink_id)
    merged = edits.merge_headers(current.headers, body.headers)
    check_header_count(settings, merged, ("body", "headers"))
    record = edits.patch_sink_headers(client, sid, sink_id, body.headers)
    return redact_headers(record.headers)


# --- transformation ---------------------------------------------------------------


@router.get(
    "/stream/{stream_id}/sink/{sink_id}/transformation",
    operation_id="v1.streaming.sink.transformation-get",
    response_model=SinkTransformationOut,
    responses=ERRORS,
)
def get_transformation(
    stream_id: StreamIdPath, sink_id: SinkIdPath, client: RedisDep
) -> SinkTransformationOut:
    """The sink's handler code (null: the default handler runs)."""
    sid = _stream_id(client, stream_id)
    record = store_sinks.require_stream_sink(client, sid, sink_id, with_code=True)
    return SinkTransformationOut(code=record.code, enabled=record.code is not None)


@router.patch(
    "/stream/{stream_id}/sink/{sink_id}/transformation",
    operation_id="v1.streaming.sink.transformation-partial-update",
    response_model=EmptyResponse,
    responses=SINK_ERRORS,
)
def patch_transformation(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    body: SinkTransformIn,
    client: RedisDep,
    settings: SettingsDep,
    request: Request,
) -> dict[str, Any]:
    """Set the handler code (compiled first: 400 ``invalid_transformation`` naming
    line and column when it does not compile or defines no ``handler``), or with
    ``code: null`` remove it."""
    sid = _stream_id(client, stream_id)
    store_sinks.require_stream_sink(client, sid, sink_id)
    check_code_size(settings, body.code)
    if body.code is not None:
        compile_check(body.code, settings.js_timeout_ms, settings.js_memory_mb)
    record = edits.set_sink_code(client, sid, sink_id, body.code)
    after_sink_change(request, record)
    return {}


def compile_check(code: str, timeout_ms: int, memory_mb: int) -> None:
    """Raise 400 ``invalid_transformation`` when ``code`` does not compile."""
    from streamsink.transform.runtime import check_code

    try:
        check_code(code, timeout_ms=timeout_ms, memory_mb=memory_mb)
    except CompileError as exc:
        where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        error = ApiError(
            f"transformation does not compile{where}: {exc.message}",
            code="invalid_transformation",
            status_code=400,
        )
        raise compile_failed(error, exc) from None
