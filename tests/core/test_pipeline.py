"""The shared pipeline (worker), simulate (API) and the transform CLI."""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamsink.errors import CompileError, HandlerError, OutputError, OutputTooLarge
from streamsink.otlp.ids import derive_span_id, derive_trace_id
from streamsink.transform import runtime as runtime_mod
from streamsink.transform.cli import run_transform
from streamsink.transform.pipeline import transform
from streamsink.transform.runtime import JsRuntime
from streamsink.transform.simulate import simulate
from tests.core.otlp_strict import parse_proto, parse_strict

ROOT = Path(__file__).resolve().parents[2]
CHILDREN = """function handler(input) {
  return {config: {serviceName: "svc"}, spans: input.events.map((e) => ({
    name: e.eventType, spanIdKey: e.payload.id, parentSpanIdKey: e.payload.parent,
    traceIdKey: e.payload.trace, startTime: "2025-01-01T00:00:00.000000001Z",
    endTime: "2025-01-01T00:00:01Z", attributes: {pad: "x".repeat(200)}}))};
}"""


def ev(name: str, **payload: str) -> dict[str, str]:
    return {"eventType": name, "payload": json.dumps(payload)}


@pytest.fixture(scope="module")
def rt() -> Iterator[JsRuntime]:
    runtime = JsRuntime(timeout_ms=500, memory_mb=64, cache_size=4)
    yield runtime
    runtime.close()


@pytest.fixture
def default_rt(rt: JsRuntime, monkeypatch: pytest.MonkeyPatch) -> JsRuntime:
    monkeypatch.setattr(runtime_mod, "_default", rt)
    return rt


def test_trace_lookup_and_remembered_spans(rt: JsRuntime) -> None:
    known_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    asked: list[str] = []

    def lookup(parent: str) -> str | None:
        asked.append(parent)
        return known_trace

    events = [
        ev("child", id="c1", parent="p_earlier"),
        ev("grandchild", id="g1", parent="c1"),
        ev("root", id="r1", trace="t1"),
        ev("kid", id="k1", parent="r1"),
    ]
    res = transform(
        events, stream_id="strm_p", sink_key="sink_p", code=CHILDREN, runtime=rt,
        trace_lookup=lookup,
    )  # fmt: skip
    spans = res.batch.spans
    assert asked == [derive_span_id("strm_p", "p_earlier")]
    assert spans[0].trace_id.hex() == spans[1].trace_id.hex() == known_trace
    assert spans[3].trace_id.hex() == derive_trace_id("strm_p", "t1")
    assert res.span_traces == {
        derive_span_id("strm_p", "c1"): known_trace,
        derive_span_id("strm_p", "g1"): known_trace,
        derive_span_id("strm_p", "r1"): derive_trace_id("strm_p", "t1"),
        derive_span_id("strm_p", "k1"): derive_trace_id("strm_p", "t1"),
    }
    assert len(res.bodies) == 1 and res.bodies[0].span_count == 4
    assert parse_strict(res.bodies[0].data) is not None


def test_protobuf_gzip_split(rt: JsRuntime) -> None:
    events = [ev("e", id=f"s{i}") for i in range(30)]
    res = transform(
        events, stream_id="strm_p", sink_key="sink_p", code=CHILDREN, runtime=rt,
        encoding="protobuf", gzip_body=True, max_bytes=2048,
    )  # fmt: skip
    assert len(res.bodies) > 1
    got = []
    for body in res.bodies:
        assert body.headers() == {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        }
        raw = gzip.decompress(body.data)
        assert len(raw) <= 2048
        got += [s.span_id for s in parse_proto(raw).resource_spans[0].scope_spans[0].spans]
    assert got == [s.span_id for s in res.batch.spans]


def test_now_is_injectable(rt: JsRuntime) -> None:
    code = "function handler(i) { return {spans: [{name: 'n'}]} }"
    res = transform([], stream_id="s", sink_key="k", code=code, runtime=rt, now_ns=123)
    assert res.batch.spans[0].start_time_unix_nano == 123


def test_simulate(default_rt: JsRuntime) -> None:
    code = "var n = 0; function handler(i) { n++; return {spans: [{name: 'x', n: n}], extra: 1} }"
    cached = default_rt.cached()
    first = simulate(code, [ev("a", id="1")], now_ns=5)
    assert first["output"] == {"spans": [{"name": "x", "n": 1}], "extra": 1}
    assert first["warnings"] == [
        "extra: unknown field, ignored",
        "spans[0].n: unknown field, ignored",
    ]
    span = parse_strict(first["otlp"]).resource_spans[0].scope_spans[0].spans[0]
    assert (span.name, span.start_time_unix_nano) == ("x", 5)
    assert simulate(code, [ev("a")])["output"]["spans"][0]["n"] == 1  # fresh isolate each run
    assert default_rt.cached() == cached  # simulate caches nothing


def test_simulate_default_handler_and_errors(default_rt: JsRuntime) -> None:
    out = simulate(None, [ev("user.created", id="u1")])
    assert out["output"]["spans"][0]["attributes"] == {"id": "u1"}
    assert "warnings" not in out
    with pytest.raises(CompileError) as info:
        simulate("function handler( {", [])
    assert info.value.line == 1
    with pytest.raises(HandlerError, match=r"line 1"):
        simulate("function handler() { throw new Error('x') }", [])
    with pytest.raises(OutputError, match=r"^spans\[0\]\.endTime: before startTime"):
        simulate(
            "function handler() { return {spans: [{name: 'a', startTime: '2025-01-02',"
            " endTime: '2025-01-01'}]} }",
            [],
        )


def test_cli_prints_pretty_otlp(default_rt: JsRuntime, tmp_path: Path) -> None:
    events = tmp_path / "events.json"
    events.write_text(json.dumps({"events": [ev("a", id="1")]}))
    out, err = io.StringIO(), io.StringIO()
    code = run_transform(
        str(ROOT / "transforms/svix-webhook-attempts.js"),
        str(ROOT / "transforms/samples/svix-webhook-attempts.events.json"),
        stdout=out,
        stderr=err,
    )
    assert code == 0 and err.getvalue() == ""
    text = out.getvalue()
    assert text.startswith('{\n  "resourceSpans": [')
    assert len(parse_strict(text).resource_spans[0].scope_spans[0].spans) == 4
    out = io.StringIO()
    assert run_transform(str(ROOT / "transforms/default.js"), str(events), stdout=out) == 0


@pytest.mark.parametrize(
    ("js", "expected"),
    [
        (
            "function handler(input) {\n  return input.nope.x;\n}\n",
            "{path}:2:21: handler_error: TypeError: Cannot read properties of undefined "
            "(reading 'x')\n    return input.nope.x;\n                      ^\n",
        ),
        (
            "function handler(input) {\n  return {spans: [{name: 1}]};\n}\n",
            "{path}: output_error: spans[0].name: expected a string, got number\n",
        ),
        (
            "function handler(input) {\n  return {spans: [],\n}\n",
            "{path}:3:2: compile_error: SyntaxError: Unexpected end of input\n  }\n   ^\n",
        ),
    ],
)
def test_cli_errors_show_line_and_column(
    default_rt: JsRuntime, tmp_path: Path, js: str, expected: str
) -> None:
    handler = tmp_path / "h.js"
    handler.write_text(js)
    events = tmp_path / "events.json"
    events.write_text(json.dumps([ev("a")]))
    out, err = io.StringIO(), io.StringIO()
    assert run_transform(str(handler), str(events), stdout=out, stderr=err) == 1
    assert out.getvalue() == ""
    assert err.getvalue() == expected.replace("{path}", str(handler))


def test_cli_bad_files(tmp_path: Path) -> None:
    err = io.StringIO()
    assert run_transform(str(tmp_path / "missing.js"), "x.json", stderr=err) == 1
    assert err.getvalue().startswith("error: ")
    handler = tmp_path / "h.js"
    handler.write_text("function handler() {}")
    bad = tmp_path / "bad.json"
    bad.write_text('{"events": 3}')
    err = io.StringIO()
    assert run_transform(str(handler), str(bad), stderr=err) == 1
    assert "expected a JSON array" in err.getvalue()


BIG = (
    "function handler(input) { var s = 'x'; for (var k = 0; k < 25; k++) s += s;\n"
    "  return {spans: [{name: 'a', attributes: {big: s}}]}; }\n"
)


def test_output_limit_in_the_worker_pipeline_and_the_cli(
    default_rt: JsRuntime, tmp_path: Path
) -> None:
    """The worker's pipeline raises OutputTooLarge (the worker disables the sink
    with its message); the CLI prints it, naming the setting."""
    with pytest.raises(OutputTooLarge) as info:
        transform([ev("a")], stream_id="s", sink_key="big", code=BIG, runtime=default_rt)
    limit = default_rt.max_output_bytes
    assert limit == 16 * 1024 * 1024  # the fixture's 64 MiB heap / 4
    assert str(info.value).endswith(f"(STREAMSINK_JS_MAX_OUTPUT_BYTES={limit})")
    handler = tmp_path / "big.js"
    handler.write_text(BIG)
    events = tmp_path / "events.json"
    events.write_text(json.dumps([ev("a")]))
    out, err = io.StringIO(), io.StringIO()
    assert run_transform(str(handler), str(events), stdout=out, stderr=err) == 1
    assert out.getvalue() == ""
    assert err.getvalue() == (
        f"{handler}: output_too_large: the handler's result is at least 33554452 bytes of"
        f" JSON, over the 16 MiB output limit (STREAMSINK_JS_MAX_OUTPUT_BYTES={limit})\n"
    )


@pytest.mark.parametrize(
    ("value", "field", "shown"),
    [
        ("NaN", "startTime", "NaN"),
        ("Infinity", "endTime", "Infinity"),
        ("new Date('not a date')", "startTime", "Invalid Date"),
        ("Date.now() / 0", "endTime", "Infinity"),
    ],
)
def test_non_finite_times_are_errors_not_now(
    rt: JsRuntime, value: str, field: str, shown: str
) -> None:
    """JSON.stringify turns NaN, Infinity and invalid Dates into null, which read
    as "now": a handler bug that must surface, naming the span and field."""
    code = (
        "function handler() { return {spans: [{name: 'ok', startTime: 0},"
        f" {{name: 'bad', {field}: {value}}}]}}; }}"
    )
    message = f"spans[1].{field}: not a time: {shown} (JSON would turn it into null)"
    with pytest.raises(OutputError) as info:
        transform([ev("a")], stream_id="s", sink_key="nan", code=code, runtime=rt)
    assert str(info.value) == message
    with pytest.raises(OutputError) as info:
        simulate(code, [ev("a")], runtime=rt)
    assert str(info.value) == message
    events = (
        "function handler() { return {spans: [{name: 'a', events: [{name: 'e', time: NaN}]}]}; }"
    )
    with pytest.raises(OutputError, match=r"^spans\[0\]\.events\[0\]\.time: not a time: NaN"):
        transform([ev("a")], stream_id="s", sink_key="nan", code=events, runtime=rt)


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([{"eventType": "a", "payload": 3}], "events[0].payload: Input should be a valid string"),
        ([{"payload": "{}"}], "events[0].eventType: Field required"),
        ([{"eventType": "a" * 300, "payload": "{}"}], "events[0].eventType: Value error"),
        ([{"eventType": "a b", "payload": "{}"}], "events[0].eventType: Value error"),
        ({"events": []}, "events: List should have at least 1 item"),
        ([{"eventType": "a", "payload": "{}"}] * 3, "3 events; the API takes at most 2"),
    ],
)
def test_cli_checks_events_by_the_api_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, events: object, problem: str
) -> None:
    """`transform run` refuses what POST .../events refuses (the same model and
    limits), instead of running the handler on it."""
    monkeypatch.setenv("STREAMSINK_MAX_EVENTS_PER_REQUEST", "2")
    handler = tmp_path / "h.js"
    handler.write_text("function handler() { return {spans: []}; }")
    path = tmp_path / "events.json"
    path.write_text(json.dumps(events))
    err = io.StringIO()
    assert run_transform(handler, path, stdout=io.StringIO(), stderr=err) == 1
    assert err.getvalue().startswith("error: ") and problem in err.getvalue()


def test_cli_checks_the_api_body_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMSINK_MAX_BODY_BYTES", "1024")
    handler = tmp_path / "h.js"
    handler.write_text("function handler() { return {spans: []}; }")
    path = tmp_path / "events.json"
    path.write_text(json.dumps([{"eventType": "a", "payload": "x" * 2000}]))
    err = io.StringIO()
    assert run_transform(handler, path, stdout=io.StringIO(), stderr=err) == 1
    assert "the API takes at most 1024 (STREAMSINK_MAX_BODY_BYTES)" in err.getvalue()
