"""The one transform pipeline used by the worker, simulate and the CLI:

events -> handler (V8) -> validated spans -> IDs -> OTLP body(s).

Pure apart from running JS: no Redis, no network. ``trace_lookup`` lets the
worker join children to traces remembered from earlier batches, and the
returned ``span_traces`` tells it what to remember.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from streamsink.otlp.ids import IdDeriver, TraceLookup, assign_traces
from streamsink.otlp.spans import SpanBatch
from streamsink.otlp.split import Body, Encoding, encode_bodies
from streamsink.transform.handler_input import build_input_json
from streamsink.transform.runtime import JsRuntime, default_runtime
from streamsink.transform.validate import validate_output


@dataclass(slots=True)
class TransformResult:
    output: Any  # the handler's result, as JSON data
    batch: SpanBatch
    bodies: list[Body]
    span_traces: dict[str, str] = field(default_factory=dict)  # spanId hex -> traceId hex
    warnings: list[str] = field(default_factory=list)


def output_to_batch(
    output: Any,
    *,
    stream_id: str,
    trace_lookup: TraceLookup | None = None,
    now_ns: int | None = None,
) -> tuple[SpanBatch, dict[str, str], list[str]]:
    """Validate a handler result and resolve all IDs.

    Returns the batch, ``{spanId: traceId}`` (hex) for the spans that later
    batches can name as parents (those with ``spanIdKey`` or ``spanId``), and
    warnings (unknown fields).
    """
    if now_ns is None:
        now_ns = time.time_ns()
    validated = validate_output(output, IdDeriver(stream_id), now_ns)
    spans = validated.batch.spans
    assign_traces(spans, trace_lookup)
    span_traces = {spans[i].span_id.hex(): spans[i].trace_id.hex() for i in validated.addressable}
    return validated.batch, span_traces, validated.warnings


def transform(
    events: Sequence[Mapping[str, Any]],
    *,
    stream_id: str,
    sink_key: str,
    code: str | None = None,
    runtime: JsRuntime | None = None,
    encoding: Encoding = "json",
    gzip_body: bool = False,
    max_bytes: int | None = None,
    trace_lookup: TraceLookup | None = None,
    now_ns: int | None = None,
) -> TransformResult:
    """Run one batch through ``code`` (``None``: the bundled default handler).

    ``sink_key`` picks the cached V8 isolate (one per sink and code). Raises
    ``TransformError`` subclasses (``CompileError``, ``HandlerError``,
    ``HandlerTimeout``, ``HandlerMemoryExceeded``, ``OutputError``).
    """
    rt = runtime or default_runtime()
    output = rt.run_json(sink_key, code, build_input_json(events))
    batch, span_traces, warnings = output_to_batch(
        output, stream_id=stream_id, trace_lookup=trace_lookup, now_ns=now_ns
    )
    bodies = encode_bodies(batch, encoding=encoding, gzip_body=gzip_body, max_bytes=max_bytes)
    return TransformResult(output, batch, bodies, span_traces, warnings)


__all__ = ["TransformResult", "output_to_batch", "transform"]
