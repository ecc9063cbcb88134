"""The JS sandbox: no network, files, processes, timers or out-of-heap
buffers; time and memory limits hold; one sink's code never sees another's
globals (even by patching built-in prototypes), in one shared runtime."""

from __future__ import annotations

import orjson
import pytest

from streamsink.errors import HandlerError, HandlerMemoryExceeded, HandlerTimeout
from streamsink.transform.runtime import JsRuntime

INPUT = orjson.dumps({"events": [{"eventType": "e", "payload": "{}"}]}).decode()


@pytest.fixture(scope="module")
def rt() -> JsRuntime:
    runtime = JsRuntime(timeout_ms=500, memory_mb=32, cache_size=16)
    yield runtime
    runtime.close()


def _probe(rt: JsRuntime, expr: str, sink: str = "probe") -> object:
    code = f"function handler(input) {{ var r; try {{ r = {expr}; }} catch (e) {{ r = 'threw'; }}"
    code += " return {spans: [], r: r}; }"
    return rt.run_json(sink, code, INPUT)["r"]


@pytest.mark.parametrize(
    "expr",
    [
        "typeof fetch",
        "typeof XMLHttpRequest",
        "typeof WebSocket",
        "typeof require",
        "typeof process",
        "typeof Deno",
        "typeof Bun",
        "typeof importScripts",
        "typeof setTimeout",
        "typeof setInterval",
        "typeof WebAssembly",
        "typeof SharedArrayBuffer",
        "typeof ArrayBuffer",
        "typeof Atomics",
        "typeof __timer_manager",
    ],
)
def test_no_io_or_escape_hatches(rt: JsRuntime, expr: str) -> None:
    assert _probe(rt, expr) == "undefined"


def test_no_modules(rt: JsRuntime) -> None:
    # Dynamic import gives at best a Promise that never loads anything.
    code = """var loaded = "no";
function handler(input) {
  try { import("node:fs").then(function () { loaded = "yes"; }, function () {}); }
  catch (e) {}
  return {spans: [], loaded: loaded}; }"""
    assert rt.run_json("mods", code, INPUT)["loaded"] == "no"
    assert rt.run_json("mods", code, INPUT)["loaded"] == "no"  # nothing resolved later
    with pytest.raises(Exception):  # noqa: B017 - a static import does not even compile
        rt.run_json("mods2", 'import fs from "fs"; function handler() {}', INPUT)


def test_globals_and_prototypes_are_per_sink(rt: JsRuntime) -> None:
    writer = """function handler(input) {
  globalThis.stolen = "secret-of-a"; Object.prototype.leak = "a"; JSON.parse = null;
  return {spans: []}; }"""
    reader = """function handler(input) {
  return {spans: [], g: typeof stolen, p: ({}).leak === undefined, j: typeof JSON.parse}; }"""
    rt.run_json("sink_a", writer, INPUT)
    seen = rt.run_json("sink_b", reader, INPUT)
    assert seen == {"spans": [], "g": "undefined", "p": True, "j": "function"}


def test_time_limit_holds_and_runtime_recovers(rt: JsRuntime) -> None:
    with pytest.raises(HandlerTimeout):
        rt.run_json("loop", "function handler() { while (true) {} }", INPUT)
    with pytest.raises(HandlerTimeout):  # a catch cannot swallow the termination
        rt.run_json(
            "loop2", "function handler() { for (;;) { try { while (1) {} } catch (e) {} } }", INPUT
        )
    assert _probe(rt, "1 + 1", sink="loop") == 2


def test_memory_limit_holds_and_runtime_recovers(rt: JsRuntime) -> None:
    code = "function handler() { var a = []; for (;;) a.push('x'.repeat(1e5) + a.length); }"
    with pytest.raises((HandlerMemoryExceeded, HandlerError)) as info:
        rt.run_json("mem", code, INPUT)
    assert "memory" in str(info.value).lower()
    assert _probe(rt, "'ok'", sink="mem") == "ok"
