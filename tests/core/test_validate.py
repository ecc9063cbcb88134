"""Handler output validation: typed spans, and errors naming index and field."""

from __future__ import annotations

from typing import Any

import pytest

from streamsink.errors import OutputError
from streamsink.otlp.ids import IdDeriver
from streamsink.otlp.spans import SPAN_KIND_CONSUMER, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER
from streamsink.transform.runtime import is_undefined
from streamsink.transform.validate import DEFAULT_SERVICE_NAME, Validated, validate_output

NOW = 1_800_000_000_000_000_000
T0, T0_NS = "2025-08-19T15:24:53.291Z", 1755617093291000000
T1, T1_NS = "2025-08-19T15:24:54Z", 1755617094000000000


def run(spans: list[Any], config: Any = None, **extra: Any) -> Validated:
    out: dict[str, Any] = {"spans": spans, **extra}
    if config is not None:
        out["config"] = config
    return validate_output(out, IdDeriver("strm_v"), NOW)


def error_of(spans: list[Any], **kw: Any) -> str:
    with pytest.raises(OutputError) as info:
        run(spans, **kw)
    return str(info.value)


def ok(**fields: Any) -> dict[str, Any]:
    return {"name": "s", "startTime": T0, "endTime": T1, **fields}


def test_svix_fields_and_defaults() -> None:
    v = run([{"name": "a", "startTime": T0, "endTime": T1, "attributes": {"x": 1}}])
    s = v.batch.spans[0]
    assert (s.name, s.kind, s.start_time_unix_nano, s.end_time_unix_nano) == (
        "a", SPAN_KIND_INTERNAL, T0_NS, T1_NS,
    )  # fmt: skip
    assert s.attributes == {"x": 1}
    assert v.batch.service_name == DEFAULT_SERVICE_NAME
    assert s.trace_id == b""  # left for assign_traces
    assert len(s.span_id) == 8 and v.addressable == []
    assert v.warnings == []


def test_config() -> None:
    v = run(
        [ok()],
        config={"serviceName": "svc", "scope": {"name": "sc", "version": "2.0"},
                "resourceAttributes": {"host": {"name": "h1"}, "service.name": "ignored"}},
    )  # fmt: skip
    b = v.batch
    assert (b.service_name, b.scope_name, b.scope_version) == ("svc", "sc", "2.0")
    assert b.resource_attrs() == {"host.name": "h1", "service.name": "svc"}


def test_kinds_are_case_insensitive() -> None:
    v = run([ok(kind="server"), ok(kind="Consumer"), ok(kind="SPAN_KIND_SERVER"), ok(kind=None)])
    assert [s.kind for s in v.batch.spans] == [
        SPAN_KIND_SERVER, SPAN_KIND_CONSUMER, SPAN_KIND_SERVER, SPAN_KIND_INTERNAL,
    ]  # fmt: skip


def test_keys_and_explicit_ids() -> None:
    d = IdDeriver("strm_v")
    v = run(
        [
            ok(traceIdKey="t", spanIdKey="p"),
            ok(parentIdKey="p", spanIdKey=17),  # Svix's documented misspelling; integer key
            ok(parentSpanIdKey="p", parentIdKey="p"),
            ok(traceId="4BF92F3577B34DA6A3CE929D0E0E4736", spanId="00f067aa0ba902b7",
               parentSpanId="b7ad6b7169203331"),
            ok(traceIdKey="", spanIdKey=None),  # empty key = no key
        ]
    )  # fmt: skip
    s = v.batch.spans
    assert s[0].trace_id == d.trace_id("t") and s[0].span_id == d.span_id("p")
    assert s[1].parent_span_id == d.span_id("p") and s[1].span_id == d.span_id("17")
    assert s[2].parent_span_id == d.span_id("p")
    assert s[3].trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert (s[3].span_id.hex(), s[3].parent_span_id.hex()) == (
        "00f067aa0ba902b7",
        "b7ad6b7169203331",
    )
    assert s[4].trace_id == b"" and len(s[4].span_id) == 8
    assert v.addressable == [0, 1, 3]


def test_missing_times_are_now_but_never_cross_the_given_one() -> None:
    past, future = T0, "2030-01-01T00:00:00Z"
    v = run(
        [
            {"name": "a"},
            {"name": "b", "startTime": past},
            {"name": "c", "endTime": past},
            {"name": "d", "startTime": "2031-01-01T00:00:00Z"},
            {"name": "e", "endTime": future},
        ]
    )
    s = v.batch.spans
    assert (s[0].start_time_unix_nano, s[0].end_time_unix_nano) == (NOW, NOW)
    assert (s[1].start_time_unix_nano, s[1].end_time_unix_nano) == (T0_NS, NOW)
    assert (s[2].start_time_unix_nano, s[2].end_time_unix_nano) == (T0_NS, T0_NS)
    assert s[3].end_time_unix_nano == s[3].start_time_unix_nano > NOW
    assert s[4].start_time_unix_nano == NOW


def test_status_events_links() -> None:
    v = run([ok(status={"code": "error", "message": "bad"},
                events=[{"name": "e1", "time": T1, "attributes": {"a": [1]}}, {"name": "e2"}],
                links=[{"traceIdKey": "t", "spanIdKey": "x"}])])  # fmt: skip
    s = v.batch.spans[0]
    assert (s.status.code, s.status.message) == (2, "bad")  # type: ignore[union-attr]
    assert [(e.name, e.time_unix_nano, e.attributes) for e in s.events] == [
        ("e1", T1_NS, {"a": [1]}), ("e2", T0_NS, {}),
    ]  # fmt: skip
    assert s.links[0].span_id == IdDeriver("strm_v").span_id("x")


def test_unknown_fields_are_warnings() -> None:
    v = run([ok(atributes={"x": 1})], extra=1)
    assert v.warnings == [
        "extra: unknown field, ignored",
        "spans[0].atributes: unknown field, ignored",
    ]


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        (
            [ok(), ok(), ok(), ok(startTime="yesterday")],
            'spans[3].startTime: not an ISO 8601 time: "yesterday"',
        ),
        ([ok(endTime="2025-13-01")], 'spans[0].endTime: month out of range in "2025-13-01"'),
        (
            [ok(startTime=T1, endTime=T0)],
            "spans[0].endTime: before startTime (2025-08-19T15:24:53.291000000Z < "
            "2025-08-19T15:24:54.000000000Z)",
        ),
        (
            [ok(kind="SERVERR")],
            'spans[0].kind: unknown kind "SERVERR" (SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL)',
        ),
        ([ok(kind=2)], "spans[0].kind: expected a string, got number"),
        ([{"startTime": T0}], "spans[0].name: required (a string)"),
        ([ok(name="")], "spans[0].name: must not be empty"),
        ([ok(name=5)], "spans[0].name: expected a string, got number"),
        ([ok(attributes="x")], "spans[0].attributes: expected an object, got string"),
        ([ok(attributes=[1])], "spans[0].attributes: expected an object, got array"),
        ([ok(traceIdKey={"a": 1})], "spans[0].traceIdKey: expected a string key, got object"),
        (
            [ok(traceIdKey="k", traceId="4bf92f3577b34da6a3ce929d0e0e4736")],
            "spans[0].traceId: give traceId or traceIdKey, not both",
        ),
        ([ok(traceId="abc")], "spans[0].traceId: expected 32 hex digits, got 3 characters"),
        ([ok(spanId="0000000000000000")], "spans[0].spanId: an all-zero ID is invalid"),
        (
            [ok(parentSpanId="xyzxyzxyzxyzxyzx")],
            'spans[0].parentSpanId: not hexadecimal: "xyzxyzxyzxyzxyzx"',
        ),
        (
            [ok(parentSpanIdKey="a", parentIdKey="b")],
            "spans[0].parentIdKey: conflicts with parentSpanIdKey",
        ),
        (
            [ok(status={"code": "FINE"})],
            'spans[0].status.code: unknown status code "FINE" (OK, ERROR, UNSET)',
        ),
        ([ok(status="OK")], "spans[0].status: expected an object, got string"),
        (
            [ok(events=[{"name": "e", "time": "soon"}])],
            'spans[0].events[0].time: not an ISO 8601 time: "soon"',
        ),
        ([ok(events=[{}])], "spans[0].events[0].name: required (a string)"),
        ([ok(events={})], "spans[0].events: expected an array, got object"),
        (
            [ok(links=[{"spanIdKey": "x"}])],
            "spans[0].links[0].traceId: a link needs traceId or traceIdKey",
        ),
        (
            [ok(links=[{"traceIdKey": "x"}])],
            "spans[0].links[0].spanId: a link needs spanId or spanIdKey",
        ),
        ([ok(), None], "spans[1]: expected an object, got null"),
        ([ok(), "span"], "spans[1]: expected an object, got string"),
    ],
)
def test_errors_name_index_and_field(spans: list[Any], message: str) -> None:
    assert error_of(spans) == message


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (None, "the handler must return an object {config, spans}, got null"),
        ([], "the handler must return an object {config, spans}, got array"),
        ("x", "the handler must return an object {config, spans}, got string"),
        ({}, "spans: required (an array of spans)"),
        ({"spans": {}}, "spans: expected an array, got object"),
        ({"spans": [], "config": []}, "config: expected an object, got array"),
        (
            {"spans": [], "config": {"serviceName": 1}},
            "config.serviceName: expected a string, got number",
        ),
        (
            {"spans": [], "config": {"scope": {"version": 2}}},
            "config.scope.version: expected a string, got number",
        ),
    ],
)
def test_top_level_errors(result: Any, message: str) -> None:
    with pytest.raises(OutputError) as info:
        validate_output(result, IdDeriver("s"), NOW)
    assert str(info.value) == message


def test_undefined_result() -> None:
    from streamsink.transform.runtime import _UNDEFINED

    assert is_undefined(_UNDEFINED)
    with pytest.raises(OutputError, match="got undefined"):
        validate_output(_UNDEFINED, IdDeriver("s"), NOW)
