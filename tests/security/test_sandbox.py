"""The JS sandbox: no network, files, processes, timers or out-of-heap
buffers; time and memory limits hold; one sink's code never sees another's
globals (even by patching built-in prototypes), in one shared runtime."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson
import pytest

from streamsink.errors import (
    HandlerError,
    HandlerMemoryExceeded,
    HandlerTimeout,
    OutputError,
    OutputTooLarge,
)
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


# --- output limit (STREAMSINK_JS_MAX_OUTPUT_BYTES) -----------------------------

DOUBLING = (
    "function handler() { var s = 'x'; for (var k = 0; k < {n}; k++) s += s;"
    " return {spans: [{name: 'a', attributes: {big: s}}]}; }"
)


def test_output_over_the_limit_is_refused_inside_v8(rt: JsRuntime) -> None:
    """A 134 MB attribute (a string doubled 27 times) is an OutputTooLarge naming
    the limit and its setting, in milliseconds (the text is never built), and
    the runtime keeps working."""
    assert rt.max_output_bytes == 8 * 1024 * 1024  # default: js_memory_mb / 4 MiB
    t0 = time.monotonic()
    with pytest.raises(OutputTooLarge) as info:
        rt.run_json("big", DOUBLING.replace("{n}", "27"), INPUT)
    assert time.monotonic() - t0 < 5
    assert str(info.value) == (
        "the handler's result is at least 134217748 bytes of JSON, over the 8 MiB output"
        f" limit (STREAMSINK_JS_MAX_OUTPUT_BYTES={8 * 1024 * 1024})"
    )
    assert info.value.kind == "output_too_large" and isinstance(info.value, OutputError)
    assert _probe(rt, "'ok'", sink="big") == "ok"


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("'x'.repeat(990)", 992),  # plain ASCII
        ("'\\u0001'.repeat(165)", 992),  # each escaped as \\u0001: 6 bytes
        ("'\\u00e9'.repeat(495)", 992),  # 2 bytes of UTF-8 each
        ("'\\u20ac'.repeat(330)", 992),  # 3 bytes
        ("'\\ud83d\\ude00'.repeat(247) + 'xx'", 992),  # 4 bytes a pair
        ("Array(197).fill(1e21)", 1183),  # numbers: "1e+21"
    ],
)
def test_output_limit_counts_utf8_bytes_of_the_json(value: str, size: int) -> None:
    """The limit is on the UTF-8 bytes of the result's JSON text, escapes
    included: exactly at it passes, one byte over fails."""
    code = f"function handler() {{ return {{s: {value}}}; }}"  # {"s":...} adds 6 bytes
    exact = JsRuntime(timeout_ms=2000, memory_mb=32, cache_size=2, max_output_bytes=size + 6)
    assert exact.run_json("a", code, INPUT)["s"]
    under = JsRuntime(timeout_ms=2000, memory_mb=32, cache_size=2, max_output_bytes=size + 5)
    with pytest.raises(OutputTooLarge, match="over the 99[0-9] byte output limit|over the 11"):
        under.run_json("a", code, INPUT)
    exact.close()
    under.close()


RSS_PROBE = """
import resource, sys
from streamsink.errors import OutputTooLarge
from streamsink.transform.runtime import JsRuntime
rt = JsRuntime(timeout_ms=20000, memory_mb=128, cache_size=4)
rt.run_json("warm", None, '{"events": []}')
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
for code in sys.argv[1:]:
    try:
        rt.run_json("s", code, '{"events": []}')
        print("returned")
    except OutputTooLarge as exc:
        print("refused:", exc)
print("peak", before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, flush=True)
"""


def test_huge_outputs_never_grow_the_process() -> None:
    """The issue's 2^27 handler took a worker to 716 MB peak RSS (0.7 GB per
    sink); a string of control characters JSON escapes six-fold must not make
    V8 build its 200 MB text either. Now the peak stays near the idle size."""
    escaped = (
        "function handler() { var s = '\\u0001'.repeat(5000000);"
        " return {spans: [{name: 'a', attributes: {a: s, b: s, c: s, d: s, e: s}}]}; }"
    )
    proc = subprocess.run(
        [sys.executable, "-c", RSS_PROBE, DOUBLING.replace("{n}", "27"), escaped],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("refused: the handler's result is at least 134217748 bytes")
    assert lines[1].startswith("refused: the handler's result is at least")
    _, before, peak = lines[2].split()
    assert int(peak) - int(before) < 150, proc.stdout  # MB; it was ~640 for the first alone
