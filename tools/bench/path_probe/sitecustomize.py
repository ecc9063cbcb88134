"""The probe of ``tools.bench.latency_path``, loaded by every Python process
started with this directory on ``PYTHONPATH`` (as ``sitecustomize``); it acts
only in ``streamsink worker`` processes, and only when
``STREAMSINK_PATH_PROBE_DIR`` names where to write.

It wraps the delivery functions a batch passes through and writes one line
per batch to ``<dir>/<pid>.jsonl``: the load generator's send time (from the
first event's marker), how the batch started (``job``: the worker took an RQ
job, then a delivery thread took the sink; ``linger``: the sink's thread woke
on its log; ``loop``: the previous batch's reads found it) and the times
(epoch µs) of each step. Diagnostic only: it ties the bench to these
function names, and a test keeps them in step.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import Any


def _now() -> int:
    return time.time_ns() // 1000


def install(out_dir: str) -> None:
    from streamsink.delivery import job, worker
    from streamsink.delivery.kinds import otel

    mark = re.compile(r'"b(\d+)\.(\d+)"')
    local = threading.local()
    sink_file = open(os.path.join(out_dir, f"{os.getpid()}.jsonl"), "a", buffering=1)  # noqa: SIM115
    write_lock = threading.Lock()
    taken = {"at": 0}

    def wrap(owner: Any, name: str, before: Any = None, after: Any = None) -> None:
        inner = getattr(owner, name, None)
        if inner is None:  # an older engine (no lingering): nothing to follow there
            return

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if before is not None:
                before(*args)
            result = inner(*args, **kwargs)
            if after is not None:
                after(result)
            return result

        setattr(owner, name, wrapper)

    def job_taken(*_: Any) -> None:
        taken["at"] = _now()

    def thread_started(*_: Any) -> None:
        local.how, local.taken, local.start = "job", taken["at"], _now()

    def woke(result: Any) -> None:
        if result:
            local.how, local.taken, local.start = "linger", 0, _now()

    def batch(engine: Any, sink: Any, pending: Any, then: Any = None) -> bool:
        found = mark.search(pending.events[0].payload) if pending.events else None
        local.steps = {}
        row = {
            "sent": int(found.group(2)) if found else 0,
            "how": getattr(local, "how", ""),
            "taken": getattr(local, "taken", 0),
            "start": getattr(local, "start", 0),
            "batch": _now(),
            "events": len(pending.events),
        }
        local.how, local.taken, local.start = "loop", 0, 0  # unless a wake-up comes first
        ok = deliver_batch(engine, sink, pending, then)
        row |= local.steps | {"done": _now()}
        with write_lock:
            sink_file.write(json.dumps(row) + "\n")
        return ok

    def step(name: str) -> Any:
        def note(_: Any) -> None:
            local.steps[name] = _now()

        return note

    deliver_batch = job.deliver_batch
    job.deliver_batch = batch
    wrap(worker.StreamsinkWorker, "execute_job", before=job_taken)
    wrap(worker, "process_sink", before=thread_started)
    wrap(job, "_linger", after=woke)
    wrap(otel.OtelTracingKind, "prepare", after=step("transformed"))
    wrap(otel.OtelTracingKind, "send", after=step("posted"))


def _cmdline() -> list[bytes]:
    try:
        with open("/proc/self/cmdline", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


_dir = os.environ.get("STREAMSINK_PATH_PROBE_DIR")
_cmd = _cmdline()
if _dir and b"streamsink" in _cmd and b"worker" in _cmd:
    install(_dir)
