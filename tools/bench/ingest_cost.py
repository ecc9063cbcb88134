"""What an ingested event costs, process by process and inside Redis.

``python -m tools.bench.ingest_cost`` prints one JSON object:

- ``phase``: ``--runs`` ingest phases as ``scripts/bench`` runs them (a stack
  with ``--api-processes`` API processes and 2 workers, ``--events`` events
  to a stream with no sink, 100 per POST over 8 connections), each with the
  CPU µs per event of the API (with its child processes), Redis, the workers
  and the load generator (``/proc/<pid>/stat``), events/s and the machine's
  steal and idle % over the run.
- ``append``: Redis CPU µs per event of one POST's append, by what it
  writes: ``entry_per_event`` (a ``MULTI`` of one ``XADD`` per event, each its
  own AOF record: the log format before session 7) and ``entry_per_append``
  (``scripts.APPEND`` as the API calls it: one entry). ``--posts`` appends of
  100 Svix webhook events from 8 client threads, on a throwaway embedded
  Redis with ``appendfsync always``, ``--rounds`` rounds alternating the two;
  ``events_written`` counts what the logs hold after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import redis

from streamsink.storage import appends, eventlog, keys
from streamsink.storage.connection import EmbeddedRedis
from tools.bench.harness import Bench
from tools.bench.loadgen import reference_body
from tools.bench.procstats import cpu_times, noise_pct, proc_cpu_s
from tools.bench.run import parse
from tools.devstack import Stack

CLIENTS = 8


def phase(events: int, runs: int, api_processes: int) -> list[dict[str, Any]]:
    """CPU per event by process over ``runs`` ingest phases on one stack."""
    args = parse(["--soak", "0", "--api-processes", str(api_processes)])
    out = []
    with Stack(workers=2, env={"STREAMSINK_API_PROCESSES": str(api_processes)}) as stack:
        stack.wait_workers_registered()
        bench = Bench(args, stack, 1)
        pids = bench.pids()
        for run in range(runs):
            sid = bench.stream(f"ingest-cost-{run}")
            cpu0 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
            machine0 = cpu_times()
            proc = bench.start_load([sid], events, 0, 120)
            loadgen = 0.0
            while proc.poll() is None:  # its CPU, read until it exits
                loadgen = max(loadgen, proc_cpu_s(proc.pid))
                time.sleep(0.01)
            sent = orjson.loads(proc.stdout.read() if proc.stdout else b"{}")
            cpu1 = {role: sum(proc_cpu_s(p) for p in ps) for role, ps in pids.items()}
            us = {role: round((cpu1[role] - cpu0[role]) / events * 1e6, 2) for role in cpu0}
            us["loadgen"] = round(loadgen / events * 1e6, 2)
            out.append(
                {
                    "events_per_s": round(sent["events_per_s"]),
                    "cpu_us_per_event": us,
                    **noise_pct(machine0, cpu_times()),
                }
            )
    return out


def _events(n: int) -> list[tuple[str, str]]:
    body = orjson.loads(reference_body(0, n, int(time.time() * 1e6)))
    return [(e["eventType"], e["payload"]) for e in body["events"]]


def append(posts: int, rounds: int) -> dict[str, Any]:
    """Redis CPU µs per event of one POST's append, by what the script writes."""
    events = _events(100)
    per_event_log = keys.event_log("strm_per_event")
    out: dict[str, list[float]] = {"entry_per_event": [], "entry_per_append": []}
    with tempfile.TemporaryDirectory(prefix="ss-ingest-cost-") as tmp:
        server = EmbeddedRedis(Path(tmp), appendfsync="always")
        try:
            pid = int(getattr(getattr(server, "_server", None), "pid", 0) or 0)
            path = server.socket_file
            admin = redis.Redis(unix_socket_path=path)
            admin.hset(keys.stream("strm_cost"), "id", "strm_cost")

            def one(name: str) -> None:
                client = redis.Redis(unix_socket_path=path)
                for _ in range(posts // CLIENTS):
                    if name == "entry_per_append":
                        appends.append_existing(client, "strm_cost", events)
                    else:
                        pipe = client.pipeline(transaction=True)
                        for event_type, payload in events:
                            pipe.xadd(per_event_log, {"t": event_type, "p": payload})
                        pipe.execute()
                client.close()

            for _ in range(rounds):
                for name in out:
                    before = proc_cpu_s(pid)
                    threads = [threading.Thread(target=one, args=(name,)) for _ in range(CLIENTS)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    done = posts // CLIENTS * CLIENTS * len(events)
                    out[name].append(round((proc_cpu_s(pid) - before) / done * 1e6, 2))
            # What was written, so that a figure cannot come from a script that failed.
            written = {
                "entry_per_event": int(admin.xlen(per_event_log)),
                "entry_per_append": eventlog.length(admin, "strm_cost"),
            }
            admin.close()
        finally:
            server.close()
    return {**out, "events_written": written}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.bench.ingest_cost", description=__doc__)
    p.add_argument("--events", type=int, default=100_000, help="events per ingest phase")
    p.add_argument("--runs", type=int, default=4, help="ingest phases")
    p.add_argument("--api-processes", type=int, default=2)
    p.add_argument("--posts", type=int, default=1000, help="appends per kind and round")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    report = {
        "append": append(args.posts, args.rounds),
        "phase": phase(args.events, args.runs, args.api_processes),
    }
    sys.stdout.write(orjson.dumps(report).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
