"""Dry run of a handler (``POST /stream/transformations/simulate``): no delivery,
no cache, no state kept between runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from streamsink.errors import OutputError
from streamsink.otlp.encode_json import batch_json
from streamsink.transform.depth import MAX_DEPTH, too_deep
from streamsink.transform.handler_input import build_input_json
from streamsink.transform.pipeline import output_to_batch
from streamsink.transform.runtime import JsRuntime, default_runtime

SIMULATE_STREAM_ID = "strm_simulate"


def simulate(
    code: str | None,
    events: Sequence[Mapping[str, Any]],
    stream_id: str = SIMULATE_STREAM_ID,
    runtime: JsRuntime | None = None,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """Compile and run ``code`` (``None``: the default handler) on ``events``.

    Returns ``{"output": <handler result>, "otlp": <OTLP/JSON body>}``, plus
    ``"warnings"`` when the result has fields streamsink ignores. Raises
    ``CompileError`` (with line/column) or another ``TransformError``.
    """
    rt = runtime or default_runtime()
    output = rt.run_once(code, build_input_json(events))
    # V8 checked the depth of the result it was given; the answer echoes what
    # JSON.stringify made of it (toJSON, getters), so check that too.
    deep = too_deep(output)
    if deep is not None:
        raise OutputError(deep, f"nested deeper than {MAX_DEPTH} levels")
    batch, _, warnings = output_to_batch(output, stream_id=stream_id, now_ns=now_ns)
    result: dict[str, Any] = {"output": output, "otlp": batch_json(batch)}
    if warnings:
        result["warnings"] = warnings
    return result


def simulate_http(
    code: str | None,
    events: Sequence[Mapping[str, Any]],
    url: str = "",
    runtime: JsRuntime | None = None,
) -> dict[str, Any]:
    """Like ``simulate`` for an ``http`` sink (``code=None``: its bundled default;
    ``url``: the sink's, given to the handler as ``input.url``). Returns
    ``{"output", "http": {method, url, format, contentType, headers, body}}``
    (+ ``"warnings"``): the request that would be sent, unsigned."""
    from streamsink.transform.http_output import (
        http_default_code,
        http_input_json,
        validate_http_output,
    )

    rt = runtime or default_runtime()
    src = http_default_code() if code is None else code
    output = rt.run_once(src, http_input_json([dict(e) for e in events], url))
    deep = too_deep(output)
    if deep is not None:
        raise OutputError(deep, f"nested deeper than {MAX_DEPTH} levels")
    spec = validate_http_output(output, sink_url=url)
    request = {
        "method": spec.method,
        "url": spec.url or None,
        "format": spec.format,
        "contentType": spec.content_type,
        "headers": spec.headers,
        "body": spec.render().decode("utf-8", "replace"),
    }
    result: dict[str, Any] = {"output": output, "http": request}
    if spec.warnings:
        result["warnings"] = spec.warnings
    return result
