"""The LLM backend-family handlers in transforms/ (Vercel AI SDK,
OpenInference): the exact spans each yields for its sample events, run through
the real pipeline in V8 (IDs from keys, parents, nanosecond times, kinds,
attributes with their OTLP types)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from streamsink.otlp.spans import SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL
from streamsink.transform.pipeline import transform
from streamsink.transform.runtime import JsRuntime
from tests.core.test_transforms import (
    AGENT_END,
    AGENT_START,
    CALL1_END,
    CALL1_START,
    CALL2_END,
    LLM_STREAM,
    SAMPLES,
    TRANSFORMS,
    run_file,
    same,
    sid,
    tid,
    typed,
    view,
)

T0 = 1755617090 * 10**9  # 2025-08-19T15:24:50Z
MS = 1_000_000


@pytest.fixture(scope="module")
def rt() -> Iterator[JsRuntime]:
    runtime = JsRuntime(timeout_ms=1000, memory_mb=64, cache_size=8)
    yield runtime
    runtime.close()


VERCEL = "strm_vercel"


def tcc(run: str, session: str | None = None) -> dict[str, Any]:
    """The run (and session) ids every span of a run carries for The Context Company."""
    out = {"tcc.runId": run, "ai.telemetry.metadata.tcc.runId": run}
    if session:
        out |= {"tcc.sessionId": session, "ai.telemetry.metadata.tcc.sessionId": session}
    return out


def test_vercel_ai_sdk(rt: JsRuntime) -> None:
    b = run_file(rt, "vercel-ai-sdk.js", "vercel-ai-sdk.events.json", VERCEL).batch
    assert (b.service_name, b.scope_name, b.scope_version) == ("ai-app", "ai", "")
    step0, tool, step1, run_a, run_b, run_c, step_c = (view(s) for s in b.spans)
    trace_a, span_a = tid(VERCEL, "run_a"), sid(VERCEL, "run_a")
    same(
        run_a,
        {
            "name": "ai.generateText",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": trace_a,
            "spanId": span_a,
            "parentSpanId": "",
            "start": T0 + 1,
            "end": T0 + 2000 * MS,  # 17:24:52+02:00
            "attributes": {
                "operation.name": "ai.generateText weather-agent",
                "ai.operationId": "ai.generateText",
                "resource.name": "weather-agent",
                "ai.telemetry.functionId": "weather-agent",
                "ai.model.id": "gpt-4o",
                "ai.model.provider": "openai.chat",
                "ai.prompt": '{"system":"You are terse.","prompt":"Weather in Paris?"}',
                "ai.response.text": "Rainy, 57°F.",
                "ai.response.finishReason": "stop",
                "ai.settings.maxOutputTokens": 256,
                "ai.usage.promptTokens": 30,
                "ai.usage.completionTokens": 14,
                "ai.telemetry.metadata.userId": "u_1",
                **tcc("run_a", "sess_9"),
            },
            "status": None,
        },
    )
    same(
        step0,
        {
            "name": "ai.generateText.doGenerate",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": trace_a,
            "spanId": sid(VERCEL, "run_a/step/0"),
            "parentSpanId": span_a,
            "start": T0 + 100 * MS + 1,
            "end": T0 + 900 * MS,
            "attributes": {
                "operation.name": "ai.generateText.doGenerate",
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.step.index": 0,
                "ai.model.id": "gpt-4o",
                "ai.model.provider": "openai.chat",
                "ai.prompt.messages": (
                    '[{"role":"system","content":"You are terse."},{"role":"user","content":'
                    '[{"type":"text","text":"Weather in Paris?"}]}]'
                ),
                "ai.response.toolCalls": (
                    '[{"toolCallType":"function","toolCallId":"call_w1","toolName":"getWeather",'
                    '"input":"{\\"city\\":\\"Paris\\"}"}]'
                ),
                "ai.response.finishReason": "tool-calls",
                "ai.response.model": "gpt-4o-2024-08-06",
                "ai.response.id": "chatcmpl-S0",
                "ai.usage.promptTokens": 18,
                "ai.usage.completionTokens": 6,
                "gen_ai.system": "openai.chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.response.id": "chatcmpl-S0",
                "gen_ai.response.finish_reasons": ["tool-calls"],
                "gen_ai.usage.input_tokens": 18,
                "gen_ai.usage.output_tokens": 6,
                **tcc("run_a"),
            },
            "status": None,
        },
    )
    same(
        tool,
        {
            "name": "ai.toolCall",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": trace_a,
            "spanId": sid(VERCEL, "run_a/tool/call_w1"),
            "parentSpanId": span_a,
            "start": T0 + 950 * MS,
            "end": T0 + 1200 * MS + 123456,
            "attributes": {
                "operation.name": "ai.toolCall",
                "ai.operationId": "ai.toolCall",
                "ai.toolCall.name": "getWeather",
                "ai.toolCall.id": "call_w1",
                "ai.toolCall.args": '{"city":"Paris"}',
                "ai.toolCall.result": '{"tempF":57,"conditions":"rain"}',
                "ai.step.index": 0,
                **tcc("run_a"),
            },
            "status": None,
        },
    )
    same(
        step1,
        {
            "name": "ai.generateText.doGenerate",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": trace_a,
            "spanId": sid(VERCEL, "run_a/step/1"),
            "parentSpanId": span_a,
            "start": T0 + 1250 * MS,
            "end": T0 + 2000 * MS - 1,
            "attributes": {
                "operation.name": "ai.generateText.doGenerate",
                "ai.operationId": "ai.generateText.doGenerate",
                "ai.step.index": 1,
                "ai.model.id": "gpt-4o",
                "ai.model.provider": "openai.chat",
                "ai.response.text": "Rainy, 57°F.",
                "ai.response.finishReason": "stop",
                "ai.response.model": "gpt-4o-2024-08-06",
                "ai.response.id": "chatcmpl-S1",
                "ai.usage.promptTokens": 12,
                "ai.usage.completionTokens": 8,
                "gen_ai.system": "openai.chat",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.response.id": "chatcmpl-S1",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 8,
                **tcc("run_a"),
            },
            "status": None,
        },
    )
    same(
        run_b,
        {
            "name": "ai.generateObject",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": tid(VERCEL, "run_b"),
            "spanId": sid(VERCEL, "run_b"),
            "parentSpanId": "",
            "start": T0 + 10_000 * MS,
            "end": T0 + 11_500 * MS,
            "attributes": {
                "operation.name": "ai.generateObject",
                "ai.operationId": "ai.generateObject",
                "ai.model.id": "claude-sonnet-4",
                "ai.model.provider": "anthropic.messages",
                "ai.prompt": '{"prompt":"Capital of France as JSON."}',
                "ai.response.object": '{"city":"Paris","country":"FR"}',
                "ai.response.finishReason": "stop",
                "ai.usage.promptTokens": 9,
                "ai.usage.completionTokens": 11,
                **tcc("run_b"),
            },
            "status": None,
        },
    )
    same(
        run_c,
        {
            "name": "ai.streamText",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": tid(VERCEL, "run_c"),
            "spanId": sid(VERCEL, "run_c"),
            "parentSpanId": "",
            "start": T0 + 20_000 * MS,  # epoch milliseconds
            "end": T0 + 20_250 * MS,
            "attributes": {
                "operation.name": "ai.streamText",
                "ai.operationId": "ai.streamText",
                "ai.model.id": "gpt-4o-mini",
                "ai.model.provider": "openai.chat",
                "ai.prompt": '{"messages":[{"role":"user","content":"Tell me a long story."}]}',
                **tcc("run_c"),
            },
            "status": (2, "429 Too Many Requests"),
        },
    )
    same(
        step_c,
        {
            "name": "ai.streamText.doStream",  # the run's operation, from the same batch
            "kind": SPAN_KIND_INTERNAL,
            "traceId": tid(VERCEL, "run_c"),
            "spanId": sid(VERCEL, "run_c/step/0"),
            "parentSpanId": sid(VERCEL, "run_c"),
            "start": T0 + 20_010 * MS,
            "end": T0 + 20_240 * MS,
            "attributes": {
                "operation.name": "ai.streamText.doStream",
                "ai.operationId": "ai.streamText.doStream",
                "ai.step.index": 0,
                "ai.model.id": "gpt-4o-mini",
                "ai.model.provider": "openai.chat",
                "ai.response.msToFirstChunk": 120,
                "gen_ai.system": "openai.chat",
                "gen_ai.request.model": "gpt-4o-mini",
                **tcc("run_c"),
            },
            "status": (2, "429 Too Many Requests"),
        },
    )


def test_vercel_ai_sdk_step_in_a_later_batch_joins_its_run(rt: JsRuntime) -> None:
    """traceIdKey on every span: a step whose run is not in the batch (and no
    parent memory) still lands in the run's trace, under the run's span."""
    events = json.loads((SAMPLES / "vercel-ai-sdk.events.json").read_text())
    step = json.loads(events[-1]["payload"]) | {"operation": "streamText"}
    code = (TRANSFORMS / "vercel-ai-sdk.js").read_text()
    batch = transform(
        [{"eventType": "ai.step", "payload": json.dumps(step)}],
        stream_id=VERCEL,
        sink_key="vercel-later",
        code=code,
        runtime=rt,
    ).batch
    (s,) = batch.spans
    assert (s.name, s.trace_id.hex(), s.parent_span_id.hex()) == (
        "ai.streamText.doStream",
        tid(VERCEL, "run_c"),
        sid(VERCEL, "run_c"),
    )


def test_vercel_ai_sdk_run_without_prompt_has_no_ai_prompt(rt: JsRuntime) -> None:
    run = {"runId": "r", "operation": "generateText", "model": "m", "provider": "p"}
    code = (TRANSFORMS / "vercel-ai-sdk.js").read_text()
    events = [{"eventType": "ai.run", "payload": json.dumps(run)}]
    (s,) = transform(events, stream_id=VERCEL, sink_key="v", code=code, runtime=rt).batch.spans
    assert s.attributes == {
        "operation.name": "ai.generateText",
        "ai.operationId": "ai.generateText",
        "ai.model.id": "m",
        "ai.model.provider": "p",
        **tcc("r"),
    }


def test_openinference(rt: JsRuntime) -> None:
    result = run_file(rt, "openinference.js", "llm-calls.events.json", LLM_STREAM)
    b = result.batch
    assert b.resource_attrs() == {
        "openinference.project.name": "llm-gateway",
        "service.name": "llm.gateway",
    }
    run_trace, run_span = tid(LLM_STREAM, "run_7"), sid(LLM_STREAM, "run_7")
    agent, call1, call2 = (view(s) for s in b.spans)
    same(
        agent,
        {
            "name": "weather-bot",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": run_trace,
            "spanId": run_span,
            "parentSpanId": "",
            "start": AGENT_START,
            "end": AGENT_END,
            "attributes": {
                "openinference.span.kind": "AGENT",
                "agent.name": "weather-bot",
                "session.id": "conv_42",
                "input.value": "Weather in Paris?",
                "input.mime_type": "text/plain",
                "output.value": "Rainy, 57°F.",
                "output.mime_type": "text/plain",
            },
            "status": (1, ""),
        },
    )
    same(
        call1,
        {
            "name": "chat gpt-4o",
            "kind": SPAN_KIND_CLIENT,
            "traceId": run_trace,
            "spanId": sid(LLM_STREAM, "call_1"),
            "parentSpanId": run_span,
            "start": CALL1_START,
            "end": CALL1_END,
            "attributes": {
                "openinference.span.kind": "LLM",
                "llm.system": "openai",
                "llm.provider": "openai",
                "llm.model_name": "gpt-4o-2024-08-06",
                "llm.invocation_parameters": '{"temperature":0.2,"max_tokens":256}',
                "session.id": "conv_42",
                "llm.cost.total": 0.00011,
                "llm.finish_reason": "stop",
                "llm.token_count.prompt": 12,
                "llm.token_count.completion": 8,
                "llm.token_count.total": 20,
                "llm.input_messages.0.message.role": "system",
                "llm.input_messages.0.message.content": "You are terse.",
                "llm.input_messages.1.message.role": "user",
                "llm.input_messages.1.message.content": "Weather in Paris?",
                "input.value": (
                    '{"messages":[{"role":"system","content":"You are terse."},'
                    '{"role":"user","content":"Weather in Paris?"}]}'
                ),
                "input.mime_type": "application/json",
                "llm.output_messages.0.message.role": "assistant",
                "llm.output_messages.0.message.content": "Rainy, 57°F.",
                "output.value": "Rainy, 57°F.",
                "output.mime_type": "text/plain",
            },
            "status": (1, ""),
        },
    )
    assert call2["status"] == (2, "429 Too Many Requests")
    expected2 = {
        "openinference.span.kind": "LLM",
        "llm.system": "anthropic",
        "llm.provider": "anthropic",
        "llm.model_name": "claude-sonnet-4",
        "llm.invocation_parameters": "{}",
        "session.id": "conv_42",
        "llm.token_count.prompt": 5,
        "llm.token_count.completion": 0,
        "llm.token_count.total": 5,
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "Summarise.",
        "input.value": '{"messages":[{"role":"user","content":"Summarise."}]}',
        "input.mime_type": "application/json",
        "exception.type": "rate_limit_error",
    }
    assert typed(call2["attributes"]) == typed(expected2)
    assert (call2["traceId"], call2["parentSpanId"]) == (run_trace, run_span)
    exc = [(e.name, e.time_unix_nano, e.attributes) for e in b.spans[2].events]
    assert exc == [  # Phoenix shows a span's exception from its "exception" event
        (
            "exception",
            CALL2_END,
            {"exception.type": "rate_limit_error", "exception.message": "429 Too Many Requests"},
        )
    ]
    assert b.spans[0].events == b.spans[1].events == []
