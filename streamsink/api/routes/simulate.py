"""``POST /stream/transformations/simulate``: run a handler on events, deliver nothing."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, Field

from streamsink.api.deps import SettingsDep
from streamsink.api.errors import compile_failed
from streamsink.api.limits import check_code_size
from streamsink.api.models import EventIn, HttpErrorOut, check_code_len
from streamsink.api.responses import ERRORS
from streamsink.api.wire import SinkUrl, WireModel
from streamsink.errors import (
    BadRequest,
    CompileError,
    HandlerError,
    OutputTooLarge,
    TooManyRequests,
    TransformError,
    Unprocessable,
)
from streamsink.settings import Settings
from streamsink.transform.runtime import JsRuntime
from streamsink.transform.simulate import simulate, simulate_http
from streamsink.transform.slots import api_slots

router = APIRouter(tags=["Stream Sink"])


class SimulateIn(WireModel):
    type: Literal["otelTracing", "http"] = "otelTracing"
    code: Annotated[str, AfterValidator(check_code_len)] | None = Field(
        default=None, description="handler code; null runs the default handler"
    )
    events: list[EventIn] = Field(min_length=1, max_length=1000)
    url: SinkUrl | None = Field(default=None, description="http: the sink URL (`input.url`)")


class SimulateOut(WireModel):
    output: Any = Field(description="what the handler returned")
    otlp: dict[str, Any] | None = Field(
        default=None, description="otelTracing: the OTLP/HTTP JSON body that would be sent"
    )
    http: dict[str, Any] | None = Field(
        default=None,
        description="http: the request that would be sent (method, url, format,"
        " contentType, headers, body; unsigned)",
    )
    warnings: list[str] = Field(default_factory=list)


@router.post(
    "/stream/transformations/simulate",
    operation_id="v1.streaming.transformations.simulate",
    response_model=SimulateOut,
    responses={
        **ERRORS,
        400: {"model": HttpErrorOut, "description": "Handler failed"},
        429: {"model": HttpErrorOut, "description": "Too many handler runs at once"},
    },
)
async def simulate_route(body: SimulateIn, settings: SettingsDep) -> dict[str, Any]:
    """Dry run: compile ``code``, run it on ``events``, validate and encode the
    result. A handler error is a 400 naming what is wrong (line and column,
    span index and field); a result over ``STREAMSINK_JS_MAX_OUTPUT_BYTES`` is
    a 422 ``output_too_large``. At most ``STREAMSINK_SIMULATE_CONCURRENCY`` runs
    at once per API process: past it, 429 with ``Retry-After``."""
    check_code_size(settings, body.code)
    events = [{"eventType": e.event_type, "payload": _payload_text(e.payload)} for e in body.events]
    slots = api_slots(settings.simulate_concurrency)
    if not slots.try_acquire():
        raise TooManyRequests(
            f"{slots.limit} handler runs are already in progress in this process"
            " (STREAMSINK_SIMULATE_CONCURRENCY); try again shortly",
            retry_after=max(1, math.ceil(settings.js_timeout_ms / 1000)),
        )
    try:
        # Not cancellable: the slot is released only once V8 is done.
        if body.type == "http":
            result = await run_in_threadpool(
                simulate_http, body.code, events, body.url or "", runtime=_runtime(settings)
            )
        else:
            result = await run_in_threadpool(
                simulate, body.code, events, runtime=_runtime(settings)
            )
    except CompileError as exc:
        raise compile_failed(BadRequest(str(exc), code="invalid_transformation"), exc) from exc
    except OutputTooLarge as exc:
        raise Unprocessable(str(exc), code=exc.kind) from exc
    except HandlerError as exc:
        raise compile_failed(BadRequest(str(exc), code=exc.kind), exc) from exc
    except TransformError as exc:
        raise BadRequest(str(exc), code=exc.kind) from exc
    finally:
        slots.release()
    answer = {"output": result["output"], "warnings": result.get("warnings", [])}
    return answer | ({"http": result["http"]} if body.type == "http" else {"otlp": result["otlp"]})


def _runtime(settings: Settings) -> JsRuntime:
    """A runtime with this app's limits (simulate runs each call in a fresh
    isolate, so it caches nothing)."""
    return JsRuntime(
        timeout_ms=settings.js_timeout_ms,
        memory_mb=settings.js_memory_mb,
        cache_size=1,
        max_output_bytes=settings.js_max_output_bytes,
    )


def _payload_text(payload: str | dict[str, Any] | list[Any]) -> str:
    """A payload object as JSON text, as the events route stores it (the stdlib
    past orjson's depth limit)."""
    if isinstance(payload, str):
        return payload
    try:
        return orjson.dumps(payload).decode()
    except orjson.JSONEncodeError:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
