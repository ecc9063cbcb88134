"""The validator's shortcuts for the usual span shapes (string keys, ISO times,
a status code name) give what the general helpers give, and errors keep the
order of the fields."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from streamsink.errors import OutputError
from streamsink.otlp.ids import IdDeriver
from streamsink.otlp.spans import Status
from streamsink.transform.validate import validate_output

NOW = 1_800_000_000_000_000_000
T0, T0_NS = "2025-08-19T15:24:53.291Z", 1755617093291000000
IDS = IdDeriver("strm_short")


def span(**fields: Any) -> dict[str, Any]:
    return {"name": "s", "startTime": T0, "endTime": T0, **fields}


def one(**fields: Any) -> Any:
    return validate_output({"spans": [span(**fields)]}, IdDeriver("strm_short"), NOW).batch.spans[0]


def error(**fields: Any) -> str:
    with pytest.raises(OutputError) as info:
        one(**fields)
    return str(info.value)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"code": "OK"}, Status(1, "")),
        ({"code": "ok", "message": "fine"}, Status(1, "fine")),
        ({"code": "Error", "message": ""}, Status(2, "")),
        ({"code": "eRRoR"}, Status(2, "")),
        ({"code": "STATUS_CODE_ERROR", "message": "m"}, Status(2, "m")),
        ({"code": "unset"}, Status(0, "")),
        ({"code": None, "message": "m"}, Status(0, "m")),
        ({}, Status(0, "")),
        ({"code": "OK", "extra": 1}, Status(1, "")),
    ],
)
def test_status_shapes(status: dict[str, Any], expected: Status) -> None:
    assert one(status=status).status == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"status": {"code": "OK", "message": 5}},
            "spans[0].status.message: expected a string, got number",
        ),
        ({"status": {"code": 1}}, "spans[0].status.code: expected a string, got number"),
        ({"status": ["OK"]}, "spans[0].status: expected an object, got array"),
        (
            {"events": [{}], "links": [{}], "status": {"code": "no"}},
            "spans[0].events[0].name: required (a string)",
        ),
        (
            {"links": [{"spanIdKey": "x"}], "status": {"code": "no"}},
            "spans[0].links[0].traceId: a link needs traceId or traceIdKey",
        ),
        (
            {"startTime": "2025-08-19T15:24:61Z"},
            'spans[0].startTime: time of day out of range in "2025-08-19T15:24:61Z"',
        ),
        ({"endTime": True}, "spans[0].endTime: not a time: True"),
        (
            {"traceIdKey": "k", "traceId": "00"},
            "spans[0].traceId: give traceId or traceIdKey, not both",
        ),
        ({"spanIdKey": "k", "spanId": "00"}, "spans[0].spanId: give spanId or spanIdKey, not both"),
    ],
)
def test_errors(fields: dict[str, Any], message: str) -> None:
    assert error(**fields) == message


def test_keys_of_every_form() -> None:
    s = one(traceIdKey="t", spanIdKey="s", parentSpanIdKey="p")
    assert (s.trace_id, s.span_id, s.parent_span_id) == (
        IDS.trace_id("t"), IDS.span_id("s"), IDS.span_id("p")
    )  # fmt: skip
    n = one(traceIdKey=7, spanIdKey=8)
    assert (n.trace_id, n.span_id) == (IDS.trace_id("7"), IDS.span_id("8"))
    empty = validate_output(
        {"spans": [span(traceIdKey="", spanIdKey=""), span(traceIdKey=None, spanIdKey=None)]},
        IdDeriver("strm_short"),
        NOW,
    )
    assert empty.addressable == []  # random span ids: not remembered
    assert all(len(x.span_id) == 8 and x.trace_id == b"" for x in empty.batch.spans)


def test_times_of_every_form() -> None:
    s = one(startTime=1755617093291, endTime=T0)
    assert (s.start_time_unix_nano, s.end_time_unix_nano) == (T0_NS, T0_NS)
    s = one(startTime="2025-08-19T17:24:53.291+02:00", endTime="2025-08-19T15:24:53.291000001z")
    assert (s.start_time_unix_nano, s.end_time_unix_nano) == (T0_NS, T0_NS + 1)


@pytest.mark.parametrize(
    "text",
    [
        "2025-08-19T15:24:53Z",
        "2025-08-19T15:24:53z",
        "2025-08-19T15:24:53",
        "2025-08-19T15:24:53.1Z",
        "2025-08-19T15:24:53.12Z",
        "2025-08-19T15:24:53.999Z",
        "2025-08-19T15:24:53.0001Z",
        "2025-08-19T15:24:53.120z",
        "2025-08-19T15:24:53,123456789Z",
        "2025-08-19T15:24:53.1234567891234z",
        "2025-08-19T15:24:53.5",
        "2025-08-19T15:24:53.5+02:00",
        "2025-08-19T15:24:53-0130",
        "2025-08-19 15:24:59.000000001Z",
        "2025-08-19T15:24:60Z",
        "2025-08-19T15:24:5Z",
        "2025-08-19T15:24:53.Z",
        "2025-08-19T15:24:53.1x",
        "2025-08-19T15:24:53.١Z",
        "2025-08-19T15:24:53ZZ",
        "1969-12-31T23:59:59Z",
        "2262-04-11T23:47:16.854775807Z",
        "2262-04-11T23:47:16.854775808Z",
    ],
)
def test_iso_fast_path_equals_the_full_parser(text: str) -> None:
    from streamsink.transform import timeparse

    def outcome(fn: Any) -> object:
        try:
            return fn(text)
        except timeparse.TimeParseError as exc:
            return str(exc)

    timeparse._minute_cache.clear()
    full = outcome(timeparse._parse_full)
    for prefix in ("2025-08-19T15:24", "2025-08-19 15:24", "1969-12-31T23:59", "2262-04-11T23:47"):
        with contextlib.suppress(timeparse.TimeParseError):  # an error still caches the minute
            timeparse._parse_full(prefix + ":00Z")
    assert text[:16] in timeparse._minute_cache
    assert outcome(timeparse.parse_iso8601_ns) == full
