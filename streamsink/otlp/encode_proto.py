"""Typed spans -> OTLP/HTTP protobuf (``application/x-protobuf``).

Spans are serialised one by one with the official ``opentelemetry-proto``
classes; the envelope (``ExportTraceServiceRequest`` > ``ResourceSpans`` >
``ScopeSpans``) is framed by hand so a batch can be split at span boundaries
with exact sizes (see ``split``).
"""

from __future__ import annotations

from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1 import trace_pb2

from streamsink.otlp.attributes import AttrValue
from streamsink.otlp.spans import Span, SpanBatch

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"

# field numbers: ExportTraceServiceRequest.resource_spans = 1,
# ResourceSpans.resource = 1, .scope_spans = 2; ScopeSpans.scope = 1, .spans = 2
_TAG_1 = b"\x0a"  # field 1, wire type 2 (length-delimited)
_TAG_2 = b"\x12"  # field 2, wire type 2


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint_len(n: int) -> int:
    size = 1
    while n > 0x7F:
        n >>= 7
        size += 1
    return size


def _set_any(av: AnyValue, v: AttrValue | None) -> None:
    t = type(v)
    if t is str:
        av.string_value = v  # type: ignore[assignment]
    elif t is bool:
        av.bool_value = v  # type: ignore[assignment]
    elif t is int:
        av.int_value = v  # type: ignore[assignment]
    elif t is float:
        av.double_value = v  # type: ignore[assignment]
    elif t is list:
        arr = av.array_value
        arr.SetInParent()
        for x in v:  # type: ignore[union-attr]
            _set_any(arr.values.add(), x)


def _fill_attrs(target: object, attrs: dict[str, AttrValue]) -> None:
    add = target.add  # type: ignore[attr-defined]
    for k, v in attrs.items():
        kv: KeyValue = add()
        kv.key = k
        _set_any(kv.value, v)


def span_proto(s: Span) -> trace_pb2.Span:
    """One span as a protobuf ``Span`` message."""
    p = trace_pb2.Span(
        trace_id=s.trace_id,
        span_id=s.span_id,
        parent_span_id=s.parent_span_id,
        name=s.name,
        kind=s.kind,  # type: ignore[arg-type]
        start_time_unix_nano=s.start_time_unix_nano,
        end_time_unix_nano=s.end_time_unix_nano,
    )
    _fill_attrs(p.attributes, s.attributes)
    for e in s.events:
        pe = p.events.add(time_unix_nano=e.time_unix_nano, name=e.name)
        _fill_attrs(pe.attributes, e.attributes)
    for ln in s.links:
        pl = p.links.add(trace_id=ln.trace_id, span_id=ln.span_id)
        _fill_attrs(pl.attributes, ln.attributes)
    if s.status is not None:
        p.status.code = s.status.code  # type: ignore[assignment]
        p.status.message = s.status.message
    return p


def encode_span_proto(s: Span) -> bytes:
    return span_proto(s).SerializeToString()


class ProtoFrame:
    """Frames pre-serialised spans into an ``ExportTraceServiceRequest``."""

    def __init__(self, batch: SpanBatch) -> None:
        res = Resource()
        _fill_attrs(res.attributes, batch.resource_attrs())
        scope = InstrumentationScope(name=batch.scope_name, version=batch.scope_version)
        res_b = res.SerializeToString()
        scope_b = scope.SerializeToString()
        self._resource_field = _TAG_1 + _varint(len(res_b)) + res_b
        self._scope_field = _TAG_1 + _varint(len(scope_b)) + scope_b

    @staticmethod
    def piece_size(span_bytes_len: int) -> int:
        """Bytes one span adds inside ``ScopeSpans``."""
        return 1 + varint_len(span_bytes_len) + span_bytes_len

    def body_size(self, pieces_total: int) -> int:
        """Body size for spans adding ``pieces_total`` bytes (see ``piece_size``)."""
        ss = len(self._scope_field) + pieces_total
        rs = len(self._resource_field) + 1 + varint_len(ss) + ss
        return 1 + varint_len(rs) + rs

    def body(self, spans: list[bytes]) -> bytes:
        inner = b"".join([self._scope_field, *(_TAG_2 + _varint(len(b)) + b for b in spans)])
        rs = self._resource_field + _TAG_2 + _varint(len(inner)) + inner
        return _TAG_1 + _varint(len(rs)) + rs


def encode_proto(batch: SpanBatch) -> bytes:
    """The whole batch as one protobuf body."""
    return ProtoFrame(batch).body([encode_span_proto(s) for s in batch.spans])
