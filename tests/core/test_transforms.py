"""The ready-to-use handlers in transforms/: the exact spans each one yields
for its sample events (names, kinds, IDs, nanosecond times, attributes)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from streamsink.errors import CompileError
from streamsink.otlp.encode_json import encode_json
from streamsink.otlp.spans import SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, Span
from streamsink.transform.pipeline import TransformResult, transform
from streamsink.transform.runtime import JsRuntime, check_code, default_code
from tests.core.otlp_strict import parse_strict

ROOT = Path(__file__).resolve().parents[2]
TRANSFORMS = ROOT / "transforms"
SAMPLES = TRANSFORMS / "samples"


def tid(stream: str, key: str) -> str:
    return hashlib.sha256(f"{stream}\x00{key}".encode()).digest()[:16].hex()


def sid(stream: str, key: str) -> str:
    return hashlib.sha256(f"{stream}\x00{key}".encode()).digest()[:8].hex()


@pytest.fixture(scope="module")
def rt() -> Iterator[JsRuntime]:
    runtime = JsRuntime(timeout_ms=1000, memory_mb=64, cache_size=8)
    yield runtime
    runtime.close()


# The OTLP AnyValue each Python attribute type is encoded as.
OTLP_TYPES: dict[type, str] = {
    str: "stringValue",
    bool: "boolValue",
    int: "intValue",
    float: "doubleValue",
    list: "arrayValue",
}


def typed(attrs: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Attributes with their OTLP type: ``12`` (intValue) != ``12.0`` (doubleValue)."""
    return {k: (OTLP_TYPES[type(v)], v) for k, v in attrs.items()}


def run_file(rt: JsRuntime, name: str, events: str, stream: str) -> TransformResult:
    code = (TRANSFORMS / name).read_text()
    check_code(code)
    evs = json.loads((SAMPLES / events).read_text())
    result = transform(evs, stream_id=stream, sink_key=f"sink_{name}", code=code, runtime=rt)
    body = json.loads(encode_json(result.batch))
    parse_strict(body)  # every body is valid OTLP/JSON
    wire = body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for span, sent in zip(result.batch.spans, wire, strict=True):  # Python type = wire type
        on_wire = {kv["key"]: next(iter(kv["value"])) for kv in sent["attributes"]}
        assert on_wire == {k: t for k, (t, _) in typed(span.attributes).items()}
    assert result.warnings == []
    return result


def same(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """A span view equals the expected one, attribute types (OTLP) included."""
    assert actual == expected
    assert typed(actual["attributes"]) == typed(expected["attributes"])


def view(s: Span) -> dict[str, Any]:
    return {
        "name": s.name,
        "kind": s.kind,
        "traceId": s.trace_id.hex(),
        "spanId": s.span_id.hex(),
        "parentSpanId": s.parent_span_id.hex(),
        "start": s.start_time_unix_nano,
        "end": s.end_time_unix_nano,
        "attributes": s.attributes,
        "status": None if s.status is None else (s.status.code, s.status.message),
    }


def test_readme_lists_every_transform() -> None:
    readme = (TRANSFORMS / "README.md").read_text()
    for js in TRANSFORMS.glob("*.js"):
        assert f"`{js.name}`" in readme


def test_default_js_is_the_bundled_default() -> None:
    assert (TRANSFORMS / "default.js").read_text() == default_code()


def test_default_handler(rt: JsRuntime) -> None:
    import time

    before = time.time_ns() // 1_000_000 * 1_000_000
    result = run_file(rt, "default.js", "default.events.json", "strm_default")
    after = time.time_ns()
    b = result.batch
    assert (b.service_name, b.scope_name, b.scope_version) == (
        "svix.stream",
        "svix.stream",
        "0.0.1",
    )
    signup, note = b.spans
    assert (signup.name, signup.kind, note.name) == ("user.signup", SPAN_KIND_INTERNAL, "user.note")
    assert signup.attributes == {
        "userId": "usr_1",
        "plan.name": "pro",
        "plan.seats": 5,
        "tags": ["a", "b"],
        "trial": True,
    }
    assert note.attributes == {"payload": "not json at all"}
    for s in b.spans:
        assert before <= s.start_time_unix_nano <= s.end_time_unix_nano <= after
        assert s.start_time_unix_nano % 1_000_000 == 0  # JS Date: milliseconds
        assert s.parent_span_id == b""
    assert signup.trace_id != note.trace_id  # no keys: random, distinct traces
    assert result.span_traces == {}


def test_webhook_attempts_acceptance(rt: JsRuntime) -> None:
    """Svix's webhook example: two traces keyed by message id; each http.attempt
    is the child of the message.attempt its attemptId names."""
    st = "strm_webhooks"
    result = run_file(rt, "svix-webhook-attempts.js", "svix-webhook-attempts.events.json", st)
    b = result.batch
    assert (b.service_name, b.scope_name, b.scope_version) == (
        "my.webhook.service",
        "my.webhook.scope",
        "2.0",
    )
    ms = 1_000_000
    t = 1755617091 * 10**9 + 291 * ms  # 2025-08-19T15:24:51.291Z
    assert [view(s) for s in b.spans] == [
        {
            "name": "message.attempt",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": tid(st, "msg_1234"),
            "spanId": sid(st, "atmpt_9876"),
            "parentSpanId": "",
            "start": t + 2000 * ms,
            "end": t + 5000 * ms,
            "attributes": {"msgId": "msg_1234", "appId": "app_379", "attemptId": "atmpt_9876"},
            "status": None,
        },
        {
            "name": "http.attempt",
            "kind": SPAN_KIND_CLIENT,
            "traceId": tid(st, "msg_1234"),
            "spanId": sid(st, "atmpt_9876/http"),
            "parentSpanId": sid(st, "atmpt_9876"),
            "start": t + 3000 * ms,
            "end": t + 4000 * ms,
            "attributes": {
                "msgId": "msg_1234",
                "attemptId": "atmpt_9876",
                "http.request.method": "POST",
            },
            "status": None,
        },
        {
            "name": "message.attempt",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": tid(st, "msg_5678"),
            "spanId": sid(st, "atmpt_1224"),
            "parentSpanId": "",
            "start": t,
            "end": t + 3000 * ms,
            "attributes": {"msgId": "msg_5678", "appId": "app_379", "attemptId": "atmpt_1224"},
            "status": None,
        },
        {
            "name": "http.attempt",
            "kind": SPAN_KIND_CLIENT,
            "traceId": tid(st, "msg_5678"),
            "spanId": sid(st, "atmpt_1224/http"),
            "parentSpanId": sid(st, "atmpt_1224"),
            "start": t + 1000 * ms,
            "end": t + 2000 * ms,
            "attributes": {
                "msgId": "msg_5678",
                "attemptId": "atmpt_1224",
                "http.request.method": "POST",
            },
            "status": None,
        },
    ]
    spans = b.spans
    assert len({s.trace_id for s in spans}) == 2
    for parent, child in ((spans[0], spans[1]), (spans[2], spans[3])):
        assert child.parent_span_id == parent.span_id and child.trace_id == parent.trace_id
    assert result.span_traces == {s.span_id.hex(): s.trace_id.hex() for s in spans}


DOCS_STYLE = """function handler(input) {
    const spans = input.events.map((event) => {
        const payload = event.payload
        return {
            startTime: payload.startTime,
            endTime: payload.endTime,
            name: event.eventType,
            traceIdKey: payload.msgId,
            spanIdKey: event.eventType === "message.attempt" ? payload.attemptId : undefined
            parentIdKey: event.eventType === "http.attempt" ? payload.attemptId : undefined,
            attributes: { msgId: payload.msgId, appId: payload.appId, attemptId: payload.attemptId }
        }
    })
    return { config: { serviceName: "my.webhook.service" }, spans }
}
"""


def test_svix_docs_example_as_published(rt: JsRuntime) -> None:
    """As printed in Svix's docs the example misses a comma (a clear compile
    error); with the comma its `parentIdKey` spelling is honoured."""
    with pytest.raises(CompileError) as info:
        check_code(DOCS_STYLE)
    assert (info.value.message, info.value.line, info.value.column) == (
        "SyntaxError: Unexpected identifier 'parentIdKey'",
        10,
        13,
    )
    fixed = DOCS_STYLE.replace("undefined\n", "undefined,\n", 1)
    evs = json.loads((SAMPLES / "svix-webhook-attempts.events.json").read_text())
    spans = transform(evs, stream_id="s", sink_key="docs", code=fixed, runtime=rt).batch.spans
    assert spans[1].parent_span_id == spans[0].span_id == bytes.fromhex(sid("s", "atmpt_9876"))


LLM_STREAM = "strm_llm"
AGENT_START, AGENT_END = 1755617090000000001, 1755617093999999999
CALL1_START, CALL1_END = 1755617090123456789, 1755617091500000000
CALL2_START, CALL2_END = 1755617092000001000, 1755617092250000000


def test_gen_ai(rt: JsRuntime) -> None:
    result = run_file(rt, "gen-ai.js", "llm-calls.events.json", LLM_STREAM)
    b = result.batch
    assert (b.service_name, b.scope_name) == ("llm.gateway", "streamsink.gen-ai")
    run_trace, run_span = tid(LLM_STREAM, "run_7"), sid(LLM_STREAM, "run_7")
    agent, call1, call2 = (view(s) for s in b.spans)
    same(
        agent,
        {
            "name": "invoke_agent weather-bot",
            "kind": SPAN_KIND_INTERNAL,
            "traceId": run_trace,
            "spanId": run_span,
            "parentSpanId": "",
            "start": AGENT_START,
            "end": AGENT_END,
            "attributes": {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.provider.name": "openai",
                "gen_ai.agent.name": "weather-bot",
                "gen_ai.conversation.id": "conv_42",
                # the run's input and output: MLflow's Request / Response, 2Signal's input / output
                "gen_ai.input.messages": (
                    '[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}]'
                ),
                "gen_ai.output.messages": (
                    '[{"role":"assistant","parts":[{"type":"text","content":"Rainy, 57°F."}],'
                    '"finish_reason":"stop"}]'
                ),
                "gen_ai.prompt": "Weather in Paris?",
                "gen_ai.completion": "Rainy, 57°F.",
            },
            "status": None,
        },
    )
    same(
        call1,
        {
            "name": "chat gpt-4o",
            "kind": SPAN_KIND_CLIENT,
            "traceId": run_trace,  # inherited from the agent run in the same batch
            "spanId": sid(LLM_STREAM, "call_1"),
            "parentSpanId": run_span,
            "start": CALL1_START,
            "end": CALL1_END,
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.response.id": "chatcmpl-AbC",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.max_tokens": 256,
                "gen_ai.conversation.id": "conv_42",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 8,
                "gen_ai.usage.cost": 0.00011,
                "gen_ai.system_instructions": '[{"type":"text","content":"You are terse."}]',
                "gen_ai.input.messages": (
                    '[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]}]'
                ),
                "gen_ai.output.messages": (
                    '[{"role":"assistant","parts":[{"type":"text","content":"Rainy, 57°F."}],'
                    '"finish_reason":"stop"}]'
                ),
                "gen_ai.prompt": (
                    '[{"role":"system","content":"You are terse."},'
                    '{"role":"user","content":"Weather in Paris?"}]'
                ),
                "gen_ai.completion": '[{"role":"assistant","content":"Rainy, 57°F."}]',
            },
            "status": None,
        },
    )
    same(
        call2,
        {
            "name": "chat claude-sonnet-4",
            "kind": SPAN_KIND_CLIENT,
            "traceId": run_trace,
            "spanId": sid(LLM_STREAM, "call_2"),
            "parentSpanId": run_span,
            "start": CALL2_START,
            "end": CALL2_END,
            "attributes": {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "anthropic",
                "gen_ai.request.model": "claude-sonnet-4",
                "gen_ai.conversation.id": "conv_42",
                "gen_ai.usage.input_tokens": 5,
                "gen_ai.usage.output_tokens": 0,
                "gen_ai.input.messages": (
                    '[{"role":"user","parts":[{"type":"text","content":"Summarise."}]}]'
                ),
                "gen_ai.prompt": '[{"role":"user","content":"Summarise."}]',
                "error.type": "rate_limit_error",
            },
            "status": (2, "429 Too Many Requests"),
        },
    )


def test_backends_page_names_real_handlers_and_valid_sink_bodies() -> None:
    """docs/backends.md: every handler it names exists; every sink body is JSON
    with only the otelTracing config keys and values streamsink knows."""
    page = (ROOT / "docs" / "backends.md").read_text()
    for name in set(re.findall(r"`([\w-]+\.js)`", page)):
        assert (TRANSFORMS / name).is_file(), name
    bodies = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", page, re.S)]
    assert len(bodies) == 10
    for body in bodies:
        config = body["config"]
        assert body["type"] == "otelTracing" and config["url"].endswith("/traces")
        assert set(config) <= {"url", "headers", "encoding", "compression"}
        assert config.get("encoding", "auto") in ("auto", "json", "protobuf")
        assert config.get("compression", "none") in ("none", "gzip")
