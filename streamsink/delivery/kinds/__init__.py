"""Sink kinds: one module per sink ``type`` (``base.SinkKind``), found by
``KINDS[sink.type]``."""

from __future__ import annotations

from typing import Any

from streamsink.delivery.kinds.base import Sent, SinkKind
from streamsink.delivery.kinds.http import HttpKind
from streamsink.delivery.kinds.otel import OtelTracingKind

KINDS: dict[str, SinkKind[Any]] = {
    "otelTracing": OtelTracingKind(),
    "http": HttpKind(),
}

__all__ = ["KINDS", "HttpKind", "OtelTracingKind", "Sent", "SinkKind"]
