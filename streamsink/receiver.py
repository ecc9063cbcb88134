"""The local OTLP receiver: decode OTLP/HTTP trace requests and keep the last
traces in Redis, bounded (``api/local.py`` serves them as span trees).

Decoding accepts OTLP/HTTP JSON (hex IDs, camelCase or snake_case keys, int64
as strings or numbers, enums as integers or names) and protobuf, optionally
gzip-compressed, and yields plain span dicts (see ``span_to_dict``).

Storage (one Lua call per request, atomic): a sorted set of trace ids scored
by last-seen time in ms, and one hash per trace (span id -> span JSON, so a
re-delivered span overwrites itself). Oldest traces are dropped while there
are more than ``max_traces`` traces or more than ``max_spans`` spans; a trace
keeps at most ``max_spans`` spans.
"""

from __future__ import annotations

import base64
import time
import zlib
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson
import redis
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from streamsink.errors import ApiError, BadRequest, PayloadTooLarge

JSON = "application/json"
PROTOBUF = "application/x-protobuf"
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DECODED_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TRACES = 1000
DEFAULT_MAX_SPANS = 10_000
KEY_PREFIX = "ss:local:"

Span_ = dict[str, Any]


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"


# --- decoding ----------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity) with an output bound."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}: use gzip")
    inflater = zlib.decompressobj(47)  # 32 + 15: a gzip or zlib header, auto-detected
    try:
        out = inflater.decompress(body, max_bytes + 1)
        if not inflater.eof and len(out) <= max_bytes:
            raise BadRequest(f"truncated {encoding} body")
    except zlib.error as exc:
        raise BadRequest(f"invalid {encoding} body: {exc}") from None
    if len(out) > max_bytes:
        raise PayloadTooLarge(f"decompressed body exceeds {max_bytes} bytes")
    return out


def _hex_to_b64(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where}: expected a hex string")
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise BadRequest(f"{where}: invalid hex {value[:64]!r}") from None


def _fix_ids(obj: dict[str, Any], where: str, names: tuple[str, ...]) -> None:
    for name in names:
        for key in (name, _snake(name)):
            if key in obj and obj[key] is not None:
                obj[key] = _hex_to_b64(obj[key], f"{where}.{name}")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _items(obj: dict[str, Any], name: str) -> list[Any]:
    value = obj.get(name, obj.get(_snake(name)))
    return value if isinstance(value, list) else []


def parse_json_request(body: bytes) -> ExportTraceServiceRequest:
    """OTLP/HTTP JSON -> protobuf message (IDs are hex in JSON, bytes in protobuf)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRequest("invalid OTLP JSON: expected an object")
    for r, rs in enumerate(_items(doc, "resourceSpans")):
        for s, ss in enumerate(_items(rs, "scopeSpans") if isinstance(rs, dict) else []):
            for i, span in enumerate(_items(ss, "spans") if isinstance(ss, dict) else []):
                if not isinstance(span, dict):
                    continue
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                _fix_ids(span, where, ("traceId", "spanId", "parentSpanId"))
                for k, link in enumerate(_items(span, "links")):
                    if isinstance(link, dict):
                        _fix_ids(link, f"{where}.links[{k}]", ("traceId", "spanId"))
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise BadRequest(f"invalid OTLP JSON: {exc}") from None


def parse_request(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> ExportTraceServiceRequest:
    """Decode an OTLP/HTTP trace request body; ApiError (400/413/415) when it can't."""
    media = media_type(content_type)
    if media not in (JSON, PROTOBUF):
        raise UnsupportedMediaType(
            f"unsupported Content-Type {media or '(none)'!r}: use {JSON} or {PROTOBUF}"
        )
    raw = decompress(body, content_encoding, max_decoded_bytes)
    if media == JSON:
        return parse_json_request(raw)
    try:
        return ExportTraceServiceRequest.FromString(raw)
    except (DecodeError, ValueError) as exc:
        raise BadRequest(f"invalid OTLP protobuf: {exc}") from None


def any_value(value: AnyValue) -> Any:
    """AnyValue -> a plain Python value (bytes as base64, kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return getattr(value, kind)


def attributes(kvs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def _enum_name(enum_type: Any, number: int, prefix: str) -> str:
    try:
        return str(enum_type.Name(number)).removeprefix(prefix)
    except ValueError:
        return str(number)


def span_to_dict(
    span: Span, service: str, resource: dict[str, Any], scope: dict[str, str]
) -> Span_:
    """The common span form: hex IDs, int ns times, plain attribute values."""
    start, end = int(span.start_time_unix_nano), int(span.end_time_unix_nano)
    return {
        "traceId": span.trace_id.hex(),
        "spanId": span.span_id.hex(),
        "parentSpanId": span.parent_span_id.hex() or None,
        "name": span.name,
        "kind": _enum_name(Span.SpanKind, span.kind, "SPAN_KIND_"),
        "startTimeUnixNano": start,
        "endTimeUnixNano": end,
        "durationNs": end - start,
        "attributes": attributes(span.attributes),
        "status": {
            "code": _enum_name(Status.StatusCode, span.status.code, "STATUS_CODE_"),
            "message": span.status.message,
        },
        "events": [
            {
                "name": e.name,
                "timeUnixNano": int(e.time_unix_nano),
                "attributes": attributes(e.attributes),
            }
            for e in span.events
        ],
        "links": [
            {
                "traceId": ln.trace_id.hex(),
                "spanId": ln.span_id.hex(),
                "attributes": attributes(ln.attributes),
            }
            for ln in span.links
        ],
        "serviceName": service,
        "resource": resource,
        "scope": scope,
    }


def request_spans(request: ExportTraceServiceRequest) -> list[Span_]:
    """Every span of a request as a dict; 400 for spans with invalid IDs."""
    spans: list[Span_] = []
    for r, rs in enumerate(request.resource_spans):
        resource = attributes(rs.resource.attributes)
        service = resource.get("service.name")
        service = service if isinstance(service, str) and service else "unknown_service"
        for s, ss in enumerate(rs.scope_spans):
            scope = {"name": ss.scope.name, "version": ss.scope.version}
            for i, span in enumerate(ss.spans):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"
                if len(span.trace_id) != 16 or not any(span.trace_id):
                    raise BadRequest(f"{where}.traceId: must be 16 bytes, not all zero")
                if len(span.span_id) != 8 or not any(span.span_id):
                    raise BadRequest(f"{where}.spanId: must be 8 bytes, not all zero")
                if len(span.parent_span_id) not in (0, 8):
                    raise BadRequest(f"{where}.parentSpanId: must be 8 bytes or empty")
                spans.append(span_to_dict(span, service, resource, scope))
    return spans


def decode_spans(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> list[Span_]:
    """``parse_request`` then ``request_spans``."""
    request = parse_request(
        body, content_type, content_encoding, max_decoded_bytes=max_decoded_bytes
    )
    return request_spans(request)


# --- storage -----------------------------------------------------------------

_ADD = """
local zkey, ckey, prefix = KEYS[1], KEYS[2], ARGV[1]
local now, max_traces, max_spans = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local added = 0
for i = 5, #ARGV, 3 do
  local key, sid = prefix .. ARGV[i], ARGV[i + 1]
  if redis.call('HLEN', key) < max_spans or redis.call('HEXISTS', key, sid) == 1 then
    added = added + redis.call('HSET', key, sid, ARGV[i + 2])
  end
  redis.call('ZADD', zkey, now, ARGV[i])
end
local total = redis.call('INCRBY', ckey, added)
local count = redis.call('ZCARD', zkey)
local dropped = 0
while count > max_traces or (total > max_spans and count > 1) do
  local oldest = redis.call('ZRANGE', zkey, 0, 0)[1]
  total = redis.call('DECRBY', ckey, redis.call('HLEN', prefix .. oldest))
  redis.call('DEL', prefix .. oldest)
  redis.call('ZREM', zkey, oldest)
  count = count - 1
  dropped = dropped + 1
end
return {added, dropped}
"""

_CLEAR = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1], KEYS[2])
return #ids
"""


class StoredTrace(NamedTuple):
    trace_id: str
    last_seen_ms: int
    spans: list[Span_]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class TraceStore:
    """The received traces, bounded, in Redis (see the module docstring)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = KEY_PREFIX,
        max_traces: int = DEFAULT_MAX_TRACES,
        max_spans: int = DEFAULT_MAX_SPANS,
    ) -> None:
        self.redis = client
        self.index_key = f"{prefix}traces"
        self.count_key = f"{prefix}span_count"
        self.trace_prefix = f"{prefix}trace:"
        self.max_traces = max_traces
        self.max_spans = max_spans
        self._add = client.register_script(_ADD)
        self._clear = client.register_script(_CLEAR)

    def add(self, spans: list[Span_], now_ms: int | None = None) -> tuple[int, int]:
        """Store ``spans``; returns (new spans stored, traces dropped to stay bounded)."""
        if not spans:
            return (0, 0)
        args: list[Any] = [
            self.trace_prefix,
            now_ms if now_ms is not None else int(time.time() * 1000),
            self.max_traces,
            self.max_spans,
        ]
        for span in spans:
            args += [span["traceId"], span["spanId"], orjson.dumps(span)]
        added, dropped = self._add(keys=[self.index_key, self.count_key], args=args)
        return int(added), int(dropped)

    def span_count(self) -> int:
        return int(self.redis.get(self.count_key) or 0)

    def trace_count(self) -> int:
        return int(self.redis.zcard(self.index_key))

    def list(self, limit: int = 50) -> list[StoredTrace]:
        """The ``limit`` most recently seen traces, newest first."""
        entries = self.redis.zrevrange(self.index_key, 0, max(limit, 1) - 1, withscores=True)
        return self._load([(_text(tid), int(score)) for tid, score in entries])

    def get(self, trace_id: str) -> StoredTrace | None:
        score = self.redis.zscore(self.index_key, trace_id)
        if score is None:
            return None
        found = self._load([(trace_id, int(score))])
        return found[0] if found else None

    def clear(self) -> int:
        """Delete every stored trace; returns how many there were."""
        return int(self._clear(keys=[self.index_key, self.count_key], args=[self.trace_prefix]))

    def _load(self, entries: list[tuple[str, int]]) -> list[StoredTrace]:
        pipe = self.redis.pipeline(transaction=False)
        for tid, _ in entries:
            pipe.hvals(self.trace_prefix + tid)
        traces = []
        for (tid, seen), values in zip(entries, pipe.execute(), strict=True):
            spans = [orjson.loads(v) for v in values]
            if spans:  # trimmed between the two reads: skip
                traces.append(StoredTrace(tid, seen, spans))
        return traces
