"""OTLP, pure: typed spans, ID derivation, attribute conversion, JSON/protobuf
encoding, splitting and reading a sink's answer (``otlp.answer``). The HTTP
client and the sending of a whole batch are in ``streamsink.sinkhttp``."""

from streamsink.otlp.encode_json import CONTENT_TYPE_JSON, encode_json
from streamsink.otlp.encode_proto import CONTENT_TYPE_PROTOBUF, encode_proto
from streamsink.otlp.ids import derive_span_id, derive_trace_id
from streamsink.otlp.spans import Span, SpanBatch, SpanEvent, SpanLink, Status
from streamsink.otlp.split import Body, encode_bodies, gzip_bytes

__all__ = [
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "Body",
    "Span",
    "SpanBatch",
    "SpanEvent",
    "SpanLink",
    "Status",
    "derive_span_id",
    "derive_trace_id",
    "encode_bodies",
    "encode_json",
    "encode_proto",
    "gzip_bytes",
]
