"""Reading a sink's answer (pure): its ``Outcome`` (``classify_status``), a
printable excerpt, ``Retry-After`` and the OTLP ``partialSuccess`` of an
ExportTraceServiceResponse (JSON or protobuf). ``JSON`` and ``PROTOBUF``: the
OTLP content types, defined once by the encoders."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import orjson
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from streamsink.otlp.encode_json import CONTENT_TYPE_JSON as JSON
from streamsink.otlp.encode_proto import CONTENT_TYPE_PROTOBUF as PROTOBUF

__all__ = [
    "EXCERPT_CHARS",
    "JSON",
    "PROTOBUF",
    "RETRYABLE_STATUSES",
    "Outcome",
    "PartialSuccess",
    "classify_status",
    "parse_partial_success",
    "parse_retry_after",
    "safe_excerpt",
]

EXCERPT_CHARS = 500
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    RETRYABLE = "retryable"
    TOO_LARGE = "too_large"
    PERMANENT = "permanent"


def classify_status(status: int) -> Outcome:
    if 200 <= status < 300:
        return Outcome.SUCCESS
    if status == 413:
        return Outcome.TOO_LARGE
    if status in RETRYABLE_STATUSES:
        return Outcome.RETRYABLE
    return Outcome.PERMANENT


@dataclass(frozen=True, slots=True)
class PartialSuccess:
    """OTLP ``partialSuccess``: spans the receiver rejected (0 = a warning only)."""

    rejected_spans: int
    error_message: str


def safe_excerpt(data: bytes, limit: int = EXCERPT_CHARS) -> str:
    """Printable text from arbitrary bytes, at most ``limit`` characters."""
    text = data[: limit * 4].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text[:limit])
    return text.strip()


def parse_retry_after(
    value: str | None, *, cap: float = 3600.0, now: datetime | None = None
) -> float | None:
    """Seconds from ``Retry-After`` (delay-seconds or an HTTP date), in [0, cap]."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), cap)


def parse_partial_success(body: bytes, content_type: str | None) -> PartialSuccess | None:
    """``partialSuccess`` from a JSON or protobuf ExportTraceServiceResponse, if any."""
    if not body:
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    looks_json = media.endswith("json") or body.lstrip().startswith(b"{")
    if media in (PROTOBUF, "application/protobuf", "application/octet-stream") or (
        not media and not looks_json
    ):
        try:
            msg = ExportTraceServiceResponse.FromString(body)
        except (DecodeError, ValueError):
            return None
        if not msg.HasField("partial_success"):
            return None
        ps = msg.partial_success
        rejected, message = ps.rejected_spans, ps.error_message
    elif looks_json:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        ps = (
            doc.get("partialSuccess", doc.get("partial_success")) if isinstance(doc, dict) else None
        )
        if not isinstance(ps, dict):
            return None
        raw = ps.get("rejectedSpans", ps.get("rejected_spans", 0))
        try:
            rejected = int(raw or 0)
        except (TypeError, ValueError):
            rejected = 0
        message = str(ps.get("errorMessage", ps.get("error_message")) or "")
    else:
        return None
    if not rejected and not message:
        return None
    return PartialSuccess(max(rejected, 0), message)
