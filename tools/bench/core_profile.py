"""Per-stage cost of the pure core on the worker's path, per event.

The worker (``delivery/kinds/otel.py``) calls ``transform.pipeline.transform``
on a batch of log entries: handler input JSON -> V8 call (thread hand-offs
included) -> output validation -> trace assignment -> OTLP encoding. This
script runs those stages one by one on batches of the bench's Svix webhook
events (``tools.bench.loadgen.webhook_payload``, handler
``transforms/svix-webhook-attempts.js``) and reports CPU µs per event by stage
(``time.process_time``: all threads of the process, so V8's thread and the
hand-offs count), alternating stages over ``--rounds`` rounds.

``--stage NAME --iters N`` runs one stage N times and prints nothing else: run
it under ``valgrind --tool=callgrind`` with N and with 0 iterations; the
difference of the two totals divided by N x batch is instructions per event,
the same whatever else the machine is doing::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m tools.bench.core_profile --stage transform --iters 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streamsink.otlp.ids import IdDeriver, assign_traces
from streamsink.otlp.split import encode_bodies
from streamsink.transform.handler_input import build_input_json
from streamsink.transform.pipeline import transform
from streamsink.transform.runtime import JsRuntime
from streamsink.transform.validate import validate_output
from tools.bench.loadgen import event_type, webhook_payload

STREAM_ID = "strm_profile"
SINK = "sink_profile"


def webhook_code() -> str:
    repo = Path(__file__).resolve().parents[2]
    return (repo / "transforms" / "svix-webhook-attempts.js").read_text("utf-8")


def events(n: int) -> list[dict[str, Any]]:
    """The worker's view of ``n`` log entries (payloads are JSON text)."""
    return [{"eventType": event_type(i), "payload": webhook_payload(i, 1)} for i in range(n)]


def stages(rt: JsRuntime, code: str, batch: list[dict[str, Any]]) -> dict[str, Callable[[], Any]]:
    """One callable per stage; later stages reuse the earlier stages' results."""
    text = build_input_json(batch)
    output = rt.run_json(SINK, code, text)
    now = time.time_ns()
    validated = validate_output(output, IdDeriver(STREAM_ID), now)

    def validate() -> Any:
        v = validate_output(output, IdDeriver(STREAM_ID), now)
        assign_traces(v.batch.spans)
        return v

    assign_traces(validated.batch.spans)
    spans = validated.batch
    return {
        "input": lambda: build_input_json(batch),
        "v8": lambda: rt.run_json(SINK, code, text),
        "v8_noop": lambda: rt.run_json(SINK + "-noop", _NOOP, '{"events":[]}'),
        "validate": validate,
        "json": lambda: encode_bodies(spans, encoding="json"),
        "protobuf": lambda: encode_bodies(spans, encoding="protobuf"),
        "transform": lambda: transform(
            batch, stream_id=STREAM_ID, sink_key=SINK, code=code, runtime=rt
        ),
        "transform_pb": lambda: transform(
            batch, stream_id=STREAM_ID, sink_key=SINK, code=code, runtime=rt, encoding="protobuf"
        ),
    }


#: A handler doing nothing: its call is the fixed cost of one V8 round trip.
_NOOP = "function handler(input) { return {spans: []}; }"


def profile(
    batch_size: int, iters: int, rounds: int, only: list[str] | None = None
) -> dict[str, list[float]]:
    """µs of CPU per event for each stage, one figure per round."""
    rt = JsRuntime(timeout_ms=10_000, memory_mb=512, cache_size=8)
    try:
        fns = stages(rt, webhook_code(), events(batch_size))
        if only:
            fns = {k: fns[k] for k in only}
        for fn in fns.values():  # warm-up: JIT, caches
            for _ in range(20):
                fn()
        out: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(rounds):
            for name, fn in fns.items():
                t0 = time.process_time()
                for _ in range(iters):
                    fn()
                out[name].append((time.process_time() - t0) / iters / batch_size * 1e6)
        return out
    finally:
        rt.close()


def run_stage(stage: str, batch_size: int, iters: int) -> None:
    rt = JsRuntime(timeout_ms=10_000, memory_mb=512, cache_size=8)
    try:
        fn = stages(rt, webhook_code(), events(batch_size))[stage]
        fn()
        for _ in range(iters):
            fn()
    finally:
        rt.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools.bench.core_profile", description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=100, help="events per batch (default 100)")
    p.add_argument("--iters", type=int, default=200, help="batches per stage and round")
    p.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    p.add_argument("--only", help="comma-separated stages to time (default: all)")
    p.add_argument("--stage", help="run only this stage --iters times (for callgrind)")
    args = p.parse_args(argv)
    if args.stage:
        run_stage(args.stage, args.batch, args.iters)
        return 0
    only = args.only.split(",") if args.only else None
    res = profile(args.batch, args.iters, args.rounds, only)
    print(f"CPU µs per event (batch {args.batch}, {args.iters} batches x {args.rounds} rounds)")
    for name, runs in res.items():
        shown = " ".join(f"{r:6.2f}" for r in runs)
        print(f"{name:<13} median {statistics.median(runs):6.2f}   runs {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
