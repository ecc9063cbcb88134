"""The trace memory through a real worker: a child delivered in a later batch
than its parent joins the parent's trace, and a stream never remembers more
span ids than ``STREAMSINK_TRACE_MEMORY_MAX_ENTRIES``."""

from __future__ import annotations

import orjson

from streamsink.otlp.ids import derive_trace_id
from streamsink.storage.trace_memory import TraceMemory

from .conftest import Api, Receiver, Workers

HANDLER = """
function handler(input) {
  return {
    config: { serviceName: "svc" },
    spans: input.events.map((e) => ({
      name: e.payload.name,
      startTime: 1714557600000,
      endTime: 1714557600001,
      spanIdKey: e.payload.span,
      parentSpanIdKey: e.payload.parent,
      traceIdKey: e.payload.trace,
    })),
  };
}
"""


def _event(name: str, span: str, parent: str | None = None, trace: str | None = None):
    payload = {"name": name, "span": span, "parent": parent, "trace": trace}
    return ("e", orjson.dumps({k: v for k, v in payload.items() if v is not None}).decode())


def test_children_in_later_batches_join_the_trace_and_the_memory_stays_capped(
    api: Api, receiver: Receiver, workers: Workers
) -> None:
    workers.start(trace_memory_max_entries="40")
    stream = api.stream()
    api.sink(stream, receiver.traces_url, code=HANDLER, batchSize=5)
    api.post(stream, [_event("root", "root", trace="order-1")])
    receiver.wait_accepted(1, timeout=15)
    api.post(stream, [_event("child", "child", parent="root")])  # a later batch
    # Then 200 more span ids, 5 per batch: five times the cap.
    for n in range(40):
        api.post(stream, [_event(f"filler {n}.{i}", f"f{n}.{i}") for i in range(5)])
    spans = receiver.wait_accepted(202, timeout=60)
    by_name = {s["name"]: s for s in spans}
    want = derive_trace_id(stream, "order-1")
    assert by_name["root"]["traceId"] == want
    assert by_name["child"]["traceId"] == want  # remembered across batches
    assert by_name["child"]["parentSpanId"] == by_name["root"]["spanId"]
    assert TraceMemory(api.redis, 3600, 40).entries(stream) <= 40
