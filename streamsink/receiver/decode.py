"""The local OTLP receiver: decode OTLP/HTTP trace requests and keep the last
traces in Redis, bounded (``api/local.py`` serves them as span trees).

Decoding accepts OTLP/HTTP JSON (hex IDs, camelCase or snake_case keys, int64
as strings or numbers, enums as integers or names) and protobuf, optionally
gzip-compressed, and yields plain span dicts (see ``span_to_dict``).

The route bounds what is stored: ``Inflater`` bounds the decompressed body
while decompressing, ``clip_strings`` cuts long values, and
``receiver_store.TraceStore`` bounds traces, spans and bytes.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from streamsink.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from streamsink.otlp.answer import JSON, PROTOBUF

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_DECODED_BYTES = 32 * 1024 * 1024  # decode_spans' default (tests, tools)
DEFAULT_MAX_ATTRIBUTE_BYTES = 64 * 1024

Span_ = dict[str, Any]


# --- decoding ----------------------------------------------------------------


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


class Inflater:
    """``Content-Encoding`` (gzip, deflate or identity) undone chunk by chunk as
    the body arrives, the output bounded while decompressing: a gzip bomb stops
    at ``max_bytes`` + 1 bytes of output, never inflated whole. ``what`` names
    the limit in the 413 message (the setting to change)."""

    def __init__(self, content_encoding: str | None, max_bytes: int, what: str = "") -> None:
        encoding = (content_encoding or "identity").strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise UnsupportedMediaType(f"unsupported Content-Encoding {encoding!r}: use gzip")
        self.encoding = encoding
        self.max_bytes = max_bytes
        self.what = f" ({what})" if what else ""
        # 32 + 15: a gzip or zlib header, auto-detected
        self._inflater = None if encoding in ("", "identity") else zlib.decompressobj(47)
        self._out = bytearray()

    def feed(self, chunk: bytes) -> None:
        if self._inflater is None:
            self._out += chunk
        elif chunk and not self._inflater.eof:
            room = self.max_bytes + 1 - len(self._out)
            try:
                self._out += self._inflater.decompress(chunk, room)
            except zlib.error as exc:
                raise BadRequest(f"invalid {self.encoding} body: {exc}") from None
            if self._inflater.unconsumed_tail:  # output stopped at the bound
                self._too_large()
        if len(self._out) > self.max_bytes:
            self._too_large()

    def finish(self) -> bytes:
        if self._inflater is not None and not self._inflater.eof:
            raise BadRequest(f"truncated {self.encoding} body")
        return bytes(self._out)

    def _too_large(self) -> None:
        kind = "body" if self._inflater is None else "decompressed body"
        raise PayloadTooLarge(f"{kind} exceeds {self.max_bytes} bytes{self.what}")


def decompress(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate or identity) with an output bound."""
    inflater = Inflater(content_encoding, max_bytes)
    inflater.feed(body)
    return inflater.finish()


def clip_strings(obj: Any, max_bytes: int) -> int:
    """Cut every string value (not keys) in ``obj`` longer than ``max_bytes``
    UTF-8 bytes, in place, ending it with a visible marker; returns how many."""
    clipped = 0
    todo = [obj]
    while todo:
        node = todo.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, str):
                if len(value) > max_bytes // 4 and len(raw := _utf8(value)) > max_bytes:
                    cut = raw[:max_bytes].decode("utf-8", "ignore")
                    node[key] = f"{cut}…[truncated from {len(raw)} bytes]"
                    clipped += 1
            elif isinstance(value, dict | list):
                todo.append(value)
    return clipped


def _utf8(value: str) -> bytes:
    return value.encode("utf-8", "surrogatepass")


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
