"""The local OTLP receiver's routes.

``receiver_router``: ``POST /v1/traces``, OTLP/HTTP like a collector: JSON or
protobuf, optionally gzip; 200 with an ExportTraceServiceResponse in the
request's encoding (``partialSuccess`` says what was cut or not stored), else
a google.rpc.Status with 400 (undecodable), 401 (token required), 413 (too
large), 415 (content type or encoding) or 503 (storage down, so OTLP
exporters retry). It asks for the API token when the server listens beyond
loopback (``STREAMSINK_LOCAL_RECEIVER_AUTH``: auto, always or never).

``router``: ``/api/v1/local/traces`` (bearer auth) to list, read and clear
what was received. Nanosecond times (``startTimeUnixNano``, ``endTimeUnixNano``,
``durationNs``, events' ``timeUnixNano``) are decimal strings, as in OTLP JSON:
a JSON number past 2**53 loses its last digits in a browser.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from typing import Annotated, Any

import orjson
import redis
from fastapi import APIRouter, Depends, Query, Request, Response
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from streamsink.api.deps import RedisDep, SettingsDep, authorized, require_token, scope_token
from streamsink.api.models import HttpErrorOut
from streamsink.errors import ApiError, AuthenticationFailed, BadRequest, NotFound, PayloadTooLarge
from streamsink.receiver.decode import (
    DEFAULT_MAX_ATTRIBUTE_BYTES,
    DEFAULT_MAX_BODY_BYTES,
    JSON,
    PROTOBUF,
    Inflater,
    Span_,
    UnsupportedMediaType,
    clip_strings,
    decode_spans,
    media_type,
)
from streamsink.receiver.store import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_SPANS,
    DEFAULT_MAX_TRACES,
    AddResult,
    StoredTrace,
    TraceStore,
)
from streamsink.settings import Settings

router = APIRouter(prefix="/api/v1/local", tags=["local"], dependencies=[Depends(require_token)])
receiver_router = APIRouter(tags=["otlp"])

_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
# google.rpc.Code values for the Status body of error answers
_RPC_CODES = {400: 3, 401: 16, 413: 8, 415: 3, 503: 14}
_BODY_LIMIT = "STREAMSINK_LOCAL_MAX_BODY_BYTES"
MAX_TREE_DEPTH = 64  # deeper descendants are listed flat under the node at this depth


def _setting(settings: Settings, name: str, default: int) -> int:
    """Optional settings (``local_max_*``), with this module's defaults when absent."""
    value = getattr(settings, name, None)
    return int(value) if value is not None else default


def trace_store(client: redis.Redis, settings: Settings) -> TraceStore:
    return TraceStore(
        client,
        max_traces=_setting(settings, "local_max_traces", DEFAULT_MAX_TRACES),
        max_spans=_setting(settings, "local_max_spans", DEFAULT_MAX_SPANS),
        max_bytes=_setting(settings, "local_max_bytes", DEFAULT_MAX_BYTES),
    )


def is_loopback(host: str) -> bool:
    """Whether a bind address only listens on this machine."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, "" (every address): beyond loopback
        return False


def receiver_needs_token(settings: Settings) -> bool:
    """``STREAMSINK_LOCAL_RECEIVER_AUTH``: always, never, or (auto) when the
    server binds beyond loopback (``STREAMSINK_HOST``)."""
    mode = getattr(settings, "local_receiver_auth", "auto")
    if mode in ("always", "never"):
        return mode == "always"
    return not is_loopback(settings.host)


def check_receiver_token(request: Request, settings: Settings) -> None:
    if not receiver_needs_token(settings):
        return
    presented = scope_token(request.scope)
    why = "this server listens beyond loopback" if settings.local_receiver_auth == "auto" else ""
    hint = f" ({why}; see STREAMSINK_LOCAL_RECEIVER_AUTH)" if why else ""
    if not presented:
        raise AuthenticationFailed(f"POST /v1/traces needs Authorization: Bearer <token>{hint}")
    if not authorized(request.scope, settings):
        raise AuthenticationFailed("invalid bearer token")


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, decompressed as it arrives (``Content-Encoding``);
    PayloadTooLarge as soon as the body or its decompressed form passes ``limit``."""
    inflater = Inflater(request.headers.get("content-encoding"), limit, _BODY_LIMIT)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds {limit} bytes ({_BODY_LIMIT})")
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"body exceeds {limit} bytes ({_BODY_LIMIT})")
        inflater.feed(chunk)
    return inflater.finish()


def status_body(code: int, message: str, protobuf: bool) -> bytes:
    """A google.rpc.Status (for OTLP error answers) as JSON or protobuf."""
    if not protobuf:
        return orjson.dumps({"code": code, "message": message})
    msg = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(msg)) + msg


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _otlp_error(status: int, message: str, protobuf: bool) -> Response:
    return Response(
        content=status_body(_RPC_CODES.get(status, 2), message, protobuf),
        status_code=status,
        media_type=PROTOBUF if protobuf else JSON,
    )


#: OTLP answers errors with a ``google.rpc.Status`` body (``{code, message}`` in JSON).
_OTLP_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": what}
    for status, what in (
        (400, "Undecodable request (google.rpc.Status)"),
        (401, "Token required and missing or wrong (google.rpc.Status)"),
        (413, "Body too large (google.rpc.Status)"),
        (415, "Unsupported Content-Type (google.rpc.Status)"),
        (503, "Storage unavailable (google.rpc.Status)"),
    )
}


@receiver_router.post("/v1/traces", summary="OTLP/HTTP trace receiver", responses=_OTLP_ERRORS)
async def receive_traces(request: Request, client: RedisDep, settings: SettingsDep) -> Response:
    content_type = request.headers.get("content-type")
    protobuf = media_type(content_type) == PROTOBUF
    try:
        check_receiver_token(request, settings)
        if media_type(content_type) not in (JSON, PROTOBUF):
            raise UnsupportedMediaType(
                f"unsupported Content-Type {media_type(content_type) or '(none)'!r}: "
                f"use {JSON} or {PROTOBUF}"
            )
        limit = _setting(settings, "local_max_body_bytes", DEFAULT_MAX_BODY_BYTES)
        body = await read_body(request, limit)
        store = trace_store(client, settings)
        value_limit = _setting(settings, "local_max_attribute_bytes", DEFAULT_MAX_ATTRIBUTE_BYTES)

        def decode_and_store() -> tuple[AddResult, int]:
            spans = decode_spans(body, content_type, None, max_decoded_bytes=limit)
            clipped = clip_strings(spans, value_limit)
            return store.add(spans), clipped

        result, clipped = await run_in_threadpool(decode_and_store)
    except ApiError as exc:
        return _otlp_error(exc.status_code, exc.detail, protobuf)
    except redis.RedisError as exc:
        return _otlp_error(503, f"storage unavailable: {exc}", protobuf)
    answer = ExportTraceServiceResponse()
    if result.rejected or clipped:
        answer.partial_success.CopyFrom(_partial_success(store, result, clipped, value_limit))
    if protobuf:
        return Response(content=answer.SerializeToString(), media_type=PROTOBUF)
    return _json(json_format.MessageToDict(answer))


def _partial_success(
    store: TraceStore, result: AddResult, clipped: int, value_limit: int
) -> ExportTracePartialSuccess:
    """What was not kept as sent: rejected spans, cut values (OTLP partial success)."""
    notes = []
    if result.rejected:
        notes.append(
            f"{result.rejected} spans not stored: their trace is at "
            f"STREAMSINK_LOCAL_MAX_SPANS ({store.max_spans} spans) or "
            f"STREAMSINK_LOCAL_MAX_BYTES ({store.max_bytes} bytes)"
        )
    if clipped:
        notes.append(
            f"{clipped} string values cut to STREAMSINK_LOCAL_MAX_ATTRIBUTE_BYTES "
            f"({value_limit} bytes)"
        )
    return ExportTracePartialSuccess(rejected_spans=result.rejected, error_message="; ".join(notes))


_NS_FIELDS = ("startTimeUnixNano", "endTimeUnixNano", "durationNs")


def wire_span(span: Span_) -> dict[str, Any]:
    """A stored span as the API shows it: its nanosecond times as decimal
    strings (OTLP JSON's int64 form; a JSON number past 2**53 is rounded by
    JavaScript's parser), and an empty ``children``."""
    out: dict[str, Any] = {**span, "children": []}
    for field in _NS_FIELDS:
        if field in out:
            out[field] = str(out[field])
    if "events" in span:
        out["events"] = [
            {**e, "timeUnixNano": str(e["timeUnixNano"])} if "timeUnixNano" in e else e
            for e in span["events"]
        ]
    return out


def trace_summary(trace: StoredTrace) -> dict[str, Any]:
    """A trace as the API shows it: totals, then ``spans`` as a tree."""
    trace_id, last_seen_ms, spans = trace
    roots = span_tree(spans)
    start = min(s["startTimeUnixNano"] for s in spans)
    end = max(s["endTimeUnixNano"] for s in spans)
    return {
        "traceId": trace_id,
        "lastSeenMs": last_seen_ms,
        "spanCount": len(spans),
        "rootName": roots[0]["name"] if roots else None,
        "serviceNames": sorted({s["serviceName"] for s in spans}),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "durationNs": str(end - start),
        "spans": roots,
    }


def span_tree(spans: list[Span_]) -> list[dict[str, Any]]:
    """Spans nested under their parents (``children``), by start time, in
    the API's form (``wire_span``).

    Spans whose parent is absent are roots; a parent cycle is broken at the
    earliest span of the cycle. Nesting stops at ``MAX_TREE_DEPTH``: deeper
    descendants are listed flat under the node at that depth.
    """
    ordered = sorted(spans, key=lambda s: (s["startTimeUnixNano"], s["spanId"]))
    nodes = {s["spanId"]: wire_span(s) for s in ordered}
    rank = {sid: i for i, sid in enumerate(nodes)}  # (start, span id) order
    children: dict[str, list[str]] = {sid: [] for sid in nodes}
    roots: list[str] = []
    for sid, node in nodes.items():
        parent = node.get("parentSpanId")
        if parent and parent != sid and parent in nodes:
            children[parent].append(sid)
        else:
            roots.append(sid)
    reached: set[str] = set()

    def mark(start: str) -> None:
        todo = [start]
        while todo:
            sid = todo.pop()
            if sid not in reached:
                reached.add(sid)
                todo.extend(children[sid])

    for sid in roots:
        mark(sid)
    for sid in nodes:  # what roots can't reach hangs off a cycle: cut it here
        if sid not in reached:
            children[nodes[sid]["parentSpanId"]].remove(sid)
            roots.append(sid)
            mark(sid)
    roots.sort(key=rank.__getitem__)
    return [_build(sid, nodes, children, 1) for sid in roots]


def _build(
    sid: str, nodes: dict[str, dict[str, Any]], children: dict[str, list[str]], depth: int
) -> dict[str, Any]:
    node = nodes[sid]
    if depth < MAX_TREE_DEPTH:
        node["children"] = [_build(c, nodes, children, depth + 1) for c in children[sid]]
    else:
        node["children"] = [nodes[d] for d in _descendants(sid, children)]
    return node


def _descendants(sid: str, children: dict[str, list[str]]) -> Iterator[str]:
    todo = list(reversed(children[sid]))
    while todo:
        current = todo.pop()
        yield current
        todo.extend(reversed(children[current]))


# --- routes -----------------------------------------------------------------


def _json(data: object, status_code: int = 200) -> Response:
    return Response(content=orjson.dumps(data), status_code=status_code, media_type=JSON)


#: The OpenAPI description of the trace routes' answers.
_TIMES_NOTE = (
    "Nanosecond times (`startTimeUnixNano`, `endTimeUnixNano`, `durationNs`, events'"
    " `timeUnixNano`) are decimal strings, as in OTLP JSON: a JSON number past 2^53"
    " loses digits in JavaScript."
)


@router.get(
    "/traces",
    summary="List received traces, newest first, spans as trees",
    description=_TIMES_NOTE,
)
def list_traces(
    client: RedisDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=250)] = 50,
) -> Response:
    store = trace_store(client, settings)
    traces = [trace_summary(t) for t in store.list(limit)]
    return _json({"data": traces, "done": store.trace_count() <= limit})


@router.get(
    "/traces/{trace_id}",
    summary="One received trace, spans as a tree",
    description=_TIMES_NOTE,
    responses={
        400: {"model": HttpErrorOut, "description": "Not a trace id"},
        404: {"model": HttpErrorOut, "description": "Not Found"},
    },
)
def get_trace(trace_id: str, client: RedisDep, settings: SettingsDep) -> Response:
    trace_id = trace_id.strip().lower()
    if not _TRACE_ID.match(trace_id):
        raise BadRequest("traceId must be 32 hex characters")
    trace = trace_store(client, settings).get(trace_id)
    if trace is None:
        raise NotFound(f"trace {trace_id} not found")
    return _json(trace_summary(trace))


@router.delete("/traces", status_code=204, summary="Forget every received trace")
def clear_traces(client: RedisDep, settings: SettingsDep) -> Response:
    trace_store(client, settings).clear()
    return Response(status_code=204)
