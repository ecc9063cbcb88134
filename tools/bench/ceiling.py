"""In-process transform throughput: events/s through handler (V8) + validation +
ID derivation + OTLP encoding, for the default and the webhook-attempt
handlers at several batch sizes. No Redis, no network.

``run_bench`` is the ``ceiling`` block of ``scripts/bench`` and
``measure_handler`` its ``ceiling_events_per_s`` (``python -m
tools.bench.ceiling`` prints this part alone).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from streamsink.otlp.split import encode_bodies
from streamsink.transform.handler_input import build_input_json
from streamsink.transform.pipeline import output_to_batch, transform
from streamsink.transform.runtime import JsRuntime

STREAM_ID = "strm_bench"
BATCH_SIZES = (1, 100, 1000)


def _webhook_code() -> str:
    repo_file = Path(__file__).resolve().parents[2] / "transforms" / "svix-webhook-attempts.js"
    return repo_file.read_text("utf-8")


def default_events(n: int) -> list[dict[str, Any]]:
    return [
        {
            "eventType": "user.updated",
            "payload": orjson.dumps(
                {
                    "userId": f"usr_{i}",
                    "n": i,
                    "plan": {"name": "pro", "seats": 5, "trial": False},
                    "tags": ["a", "b"],
                    "email": f"user{i}@example.com",
                }
            ).decode(),
        }
        for i in range(n)
    ]


def webhook_events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        msg, attempt = f"msg_{i // 2}", f"atmpt_{i // 2}"
        base = {"msgId": msg, "attemptId": attempt}
        if i % 2 == 0:
            p = {**base, "appId": "app_379", "startTime": "2025-08-19T15:24:53.291Z",
                 "endTime": "2025-08-19T15:24:56.291Z"}  # fmt: skip
            out.append({"eventType": "message.attempt", "payload": orjson.dumps(p).decode()})
        else:
            p = {**base, "startTime": "2025-08-19T15:24:54.291123456Z",
                 "endTime": "2025-08-19T15:24:55.291Z", "responseStatusCode": 200}  # fmt: skip
            out.append({"eventType": "http.attempt", "payload": orjson.dumps(p).decode()})
    return out


def _measure(fn: Callable[[], object], seconds: float, min_runs: int = 3) -> tuple[int, float]:
    fn()  # warm-up: compile, caches
    runs, t0 = 0, time.perf_counter()
    while True:
        fn()
        runs += 1
        elapsed = time.perf_counter() - t0
        if runs >= min_runs and elapsed >= seconds:
            return runs, elapsed


def _stages(rt: JsRuntime, code: str | None, events: list[dict[str, Any]], runs: int) -> dict:
    js = val = enc = 0.0
    for _ in range(runs):
        t0 = time.perf_counter()
        output = rt.run_json("bench-stages", code, build_input_json(events))
        t1 = time.perf_counter()
        batch, _, _ = output_to_batch(output, stream_id=STREAM_ID)
        t2 = time.perf_counter()
        encode_bodies(batch)
        t3 = time.perf_counter()
        js, val, enc = js + t1 - t0, val + t2 - t1, enc + t3 - t2
    n = runs * len(events)
    return {k: round(v / n * 1e6, 2) for k, v in (("v8", js), ("validate", val), ("encode", enc))}


def run_bench(seconds: float, encoding: str) -> dict[str, Any]:
    rt = JsRuntime(timeout_ms=10_000, memory_mb=512, cache_size=16)
    handlers: dict[str, tuple[str | None, Callable[[int], list[dict[str, Any]]]]] = {
        "default": (None, default_events),
        "webhook-attempts": (_webhook_code(), webhook_events),
    }
    results = []
    try:
        for name, (code, make) in handlers.items():
            for size in BATCH_SIZES:
                events = make(size)

                def once(
                    code: str | None = code, events: list = events, sink: str = f"bench-{name}"
                ) -> object:
                    return transform(
                        events,
                        stream_id=STREAM_ID,
                        sink_key=sink,
                        code=code,
                        runtime=rt,
                        encoding=encoding,  # type: ignore[arg-type]
                    )

                runs, elapsed = _measure(once, seconds)
                stage_runs = max(3, min(runs, 2000 // size + 3))
                results.append(
                    {
                        "handler": name,
                        "batch_size": size,
                        "events_per_sec": round(runs * size / elapsed),
                        "ms_per_batch": round(elapsed / runs * 1000, 3),
                        "us_per_event": _stages(rt, code, events, stage_runs),
                    }
                )
    finally:
        rt.close()
    return {
        "bench": "transform-in-process",
        "unit": "events/s",
        "encoding": encoding,
        "seconds_per_case": seconds,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
    }


def measure_handler(code: str, batch_size: int, seconds: float, samples: int = 3) -> int:
    """Events/s of ``transform`` with ``code`` on the load generator's events: the
    median of ``samples`` runs of ``seconds`` each (one run moved by ±15 %)."""
    from tools.bench.loadgen import event_type, webhook_payload

    events = [
        {"eventType": event_type(i), "payload": webhook_payload(i, 1)} for i in range(batch_size)
    ]
    rt = JsRuntime(timeout_ms=10_000, memory_mb=512, cache_size=4)
    rates = []
    try:
        for _ in range(samples):
            runs, elapsed = _measure(
                lambda: transform(events, stream_id=STREAM_ID, sink_key="c", code=code, runtime=rt),
                seconds,
            )
            rates.append(runs * batch_size / elapsed)
    finally:
        rt.close()
    return round(statistics.median(rates))


def format_table(report: dict[str, Any]) -> str:
    head = (
        f"{'handler':<18}{'batch':>6}{'events/s':>12}{'ms/batch':>10}"
        "   µs/event v8 / validate / encode"
    )
    lines = [head, "-" * len(head)]
    for r in report["results"]:
        s = r["us_per_event"]
        lines.append(
            f"{r['handler']:<18}{r['batch_size']:>6}{r['events_per_sec']:>12,}{r['ms_per_batch']:>10}"
            f"   {s['v8']:.1f} / {s['validate']:.1f} / {s['encode']:.1f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools.bench.ceiling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case (default 1)")
    parser.add_argument("--encoding", choices=["json", "protobuf"], default="json")
    args = parser.parse_args(argv)
    report = run_bench(args.seconds, args.encoding)
    print(format_table(report), file=sys.stderr)
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
