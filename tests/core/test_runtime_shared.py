"""Bundled handlers share a few isolates; any other code gets one per sink.

The bundled handlers (``default.js``, ``http-default.js``, ``transforms/*.js``,
byte for byte) are streamsink's own code and keep no state between calls, so
sinks running one of them share ``SHARED_ISOLATES`` isolates of it; a sink
with any other code (one byte off a template included) keeps its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources

import orjson
import pytest

from streamsink.transform.handler_input import build_input_json
from streamsink.transform.runtime import SHARED_ISOLATES, JsRuntime, default_code

TEMPLATES = resources.files("streamsink.transform").joinpath("templates")
WEBHOOK = TEMPLATES.joinpath("svix-webhook-attempts.js").read_text("utf-8")
EVENTS = [
    {
        "eventType": "message.attempt",
        "payload": orjson.dumps(
            {
                "msgId": "m1",
                "attemptId": "a1",
                "startTime": "2025-08-19T15:24:53.291Z",
                "endTime": "2025-08-19T15:24:56.291Z",
            }  # fmt: skip
        ).decode(),
    }
]


@pytest.fixture
def rt() -> Iterator[JsRuntime]:
    runtime = JsRuntime(timeout_ms=2000, memory_mb=64, cache_size=64)
    yield runtime
    runtime.close()


@pytest.mark.parametrize("code", [None, WEBHOOK], ids=["default", "template"])
def test_sinks_on_a_bundled_handler_share_isolates(rt: JsRuntime, code: str | None) -> None:
    outputs = [rt.run_json(f"sink_{i}", code, build_input_json(EVENTS)) for i in range(20)]
    assert rt.cached() <= SHARED_ISOLATES
    seen = [[(sp["name"], sp["attributes"]) for sp in o["spans"]] for o in outputs]
    assert all(s == seen[0] for s in seen)  # the same answer for every sink


def test_other_code_gets_an_isolate_per_sink(rt: JsRuntime) -> None:
    almost = WEBHOOK + "\n"  # one byte off the template: not ours any more
    for i in range(6):
        rt.run_json(f"sink_{i}", almost, build_input_json(EVENTS))
    assert rt.cached() == 6


def test_own_code_keeps_its_state_to_itself_beside_shared_sinks(rt: JsRuntime) -> None:
    stateful = (
        "var seen = (typeof seen === 'number' ? seen : 0);"
        "function handler(input) { seen += input.events.length;"
        " return {spans: [{name: 'n' + seen}]} }"
    )
    rt.run_json("shared_a", default_code(), build_input_json(EVENTS))
    first = rt.run_json("own_a", stateful, build_input_json(EVENTS))
    second = rt.run_json("own_a", stateful, build_input_json(EVENTS))
    other = rt.run_json("own_b", stateful, build_input_json(EVENTS))
    assert [first["spans"][0]["name"], second["spans"][0]["name"]] == ["n1", "n2"]
    assert other["spans"][0]["name"] == "n1"  # its own isolate, not own_a's


def test_a_sink_moving_to_a_bundled_handler_drops_its_own_isolate(rt: JsRuntime) -> None:
    own = "function handler(input) { return {spans: []} }"
    rt.run_json("sink_x", own, build_input_json(EVENTS))
    assert rt.cached() == 1
    rt.run_json("sink_x", None, build_input_json(EVENTS))
    assert rt.cached() == 1  # the shared default isolate only
