"""Typed, validated spans: the seam between handler output and OTLP encoding.

Plain slotted dataclasses (no pydantic in the per-span hot path). IDs are raw
bytes (16 for traces, 8 for spans; ``b""`` = no parent); times are Unix
nanoseconds; attributes are already flattened (see ``otlp.attributes``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streamsink.otlp.attributes import AttrValue

# OTLP enum values (opentelemetry/proto/trace/v1/trace.proto)
SPAN_KIND_INTERNAL = 1
SPAN_KIND_SERVER = 2
SPAN_KIND_CLIENT = 3
SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5
SPAN_KINDS: dict[str, int] = {
    "INTERNAL": SPAN_KIND_INTERNAL,
    "SERVER": SPAN_KIND_SERVER,
    "CLIENT": SPAN_KIND_CLIENT,
    "PRODUCER": SPAN_KIND_PRODUCER,
    "CONSUMER": SPAN_KIND_CONSUMER,
}
STATUS_CODE_UNSET = 0
STATUS_CODE_OK = 1
STATUS_CODE_ERROR = 2
STATUS_CODES: dict[str, int] = {
    "UNSET": STATUS_CODE_UNSET,
    "OK": STATUS_CODE_OK,
    "ERROR": STATUS_CODE_ERROR,
}

Attributes = dict[str, AttrValue]


@dataclass(slots=True)
class Status:
    code: int = STATUS_CODE_UNSET
    message: str = ""


@dataclass(slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class SpanLink:
    trace_id: bytes
    span_id: bytes
    attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class Span:
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    name: str
    kind: int
    start_time_unix_nano: int
    end_time_unix_nano: int
    attributes: Attributes = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    links: list[SpanLink] = field(default_factory=list)
    status: Status | None = None


@dataclass(slots=True)
class SpanBatch:
    """Everything one handler call produced: one resource, one scope, the spans."""

    service_name: str
    scope_name: str = ""
    scope_version: str = ""
    resource_attributes: Attributes = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)

    def resource_attrs(self) -> Attributes:
        """Resource attributes with ``service.name`` (``serviceName`` wins)."""
        return {**self.resource_attributes, "service.name": self.service_name}
