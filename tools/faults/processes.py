"""Scenarios that SIGKILL the engine's processes under load: workers, the API,
the embedded Redis."""

from __future__ import annotations

import random
import signal
import time

import httpx

from tools.devstack import Stack, wait_until
from tools.faults.harness import (
    FAST_ENV,
    Producer,
    Receiver,
    Result,
    jitter,
    setup_sink,
    signature_checks,
    trust_sink,
    wait_delivered,
)

BATCH = 20  # the sinks' batchSize: duplicates come at most a batch per kill


def worker_kill(kills: int, recover: float = 90.0) -> Result:
    """SIGKILL a random worker ``kills`` times at random moments under a steady
    load (a new worker replaces it at once); every acked event must arrive,
    duplicates at most one batch in flight per kill."""
    result = Result("worker_sigkill")
    receiver = Receiver().up()
    started = time.monotonic()
    with Stack(workers=2, env=FAST_ENV) as stack:
        stack.wait_workers_registered()
        stream, sink = setup_sink(stack, receiver.url, batchSize=BATCH)
        trust_sink(stack, receiver, stream, sink)
        producer = Producer(stack, stream, interval=0.05, per_request=5)
        producer.start()
        for _ in range(kills):
            time.sleep(jitter(0.3, 2.0))
            stack.kill_worker(random.randrange(len(stack.workers)), signal.SIGKILL)
            stack.start_worker()
        producer.stop()
        took = wait_delivered(receiver, producer.acked, recover)
    receiver.stop()
    result.count(producer.acked, receiver.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {"kills": kills, "recovered_s": round(took, 1)}
    signature_checks(result, receiver)
    result.check(result.lost == 0, "events lost")
    result.check(result.duplicated <= kills * BATCH, "more duplicates than batches in flight")
    result.check(result.in_order, "out of order")
    result.check(result.acked > 0, "nothing acked")
    result.passed = not result.errors
    return result


def api_kill(kills: int, recover: float = 60.0) -> Result:
    """SIGKILL the API while a client POSTs, restart it; every 202 is delivered."""
    result = Result("api_sigkill")
    receiver = Receiver().up()
    started = time.monotonic()
    downtime = []
    with Stack(workers=1, env=FAST_ENV) as stack:
        stream, _ = setup_sink(stack, receiver.url, batchSize=BATCH)
        producer = Producer(stack, stream, interval=0.01, per_request=5, timeout=5)
        producer.start()
        for _ in range(kills):
            time.sleep(jitter(0.5, 1.5))
            stack.kill_api(signal.SIGKILL)
            down = time.monotonic()
            stack.start_api()
            downtime.append(time.monotonic() - down)
        time.sleep(0.5)
        producer.stop()
        took = wait_delivered(receiver, producer.acked, recover)
    receiver.stop()
    result.count(producer.acked, receiver.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {
        "kills": kills,
        "api_restart_s": round(max(downtime, default=0), 1),
        "client_errors": dict(producer.failed),
        "recovered_s": round(took, 1),
    }
    result.check(result.lost == 0, "events lost")
    result.check(result.in_order, "out of order")
    result.check(result.acked > 0, "nothing acked")
    result.passed = not result.errors
    return result


def redis_kill(kills: int, outage: float, recover: float = 60.0) -> Result:
    """SIGKILL the embedded redis-server under load, start it again on its AOF
    after ``outage`` s: no acked event lost, the API answers 503 ``{code,
    detail}`` meanwhile (fast, never hanging), API and workers reconnect."""
    result = Result("redis_sigkill")
    receiver = Receiver().up()
    started = time.monotonic()
    with Stack(workers=1, env=FAST_ENV) as stack:
        stack.wait_workers_registered()
        stream, _ = setup_sink(stack, receiver.url, batchSize=BATCH)
        producer = Producer(stack, stream, interval=0.02, per_request=5, timeout=30)
        producer.start()
        reconnect = []
        for _ in range(kills):
            time.sleep(jitter(0.5, 1.5))
            stack.kill_redis()
            time.sleep(outage)
            stack.start_redis()
            back = time.monotonic()
            before = len(producer.acked)
            wait_until(lambda b=before: len(producer.acked) > b, 30, what="a 202 after restart")
            reconnect.append(time.monotonic() - back)
        time.sleep(0.5)
        producer.stop()
        took = wait_delivered(receiver, producer.acked, recover)
        exits = [w.poll() for w in stack.workers if w.poll() is not None]
    receiver.stop()
    result.count(producer.acked, receiver.snapshot())
    result.seconds = time.monotonic() - started
    result.details = {
        "kills": kills,
        "outage_s": outage,
        "answers_while_down": dict(producer.failed),
        "slowest_answer_s": round(producer.slowest, 2),
        "api_reconnect_s": round(max(reconnect, default=0), 2),
        "recovered_s": round(took, 1),
    }
    result.check(result.lost == 0, "events lost")
    result.check(result.in_order, "out of order")
    result.check(producer.failed.get("503", 0) > 0, "no 503 while Redis was down")
    result.check(
        not producer.bad_bodies, f"error bodies not {{code, detail}}: {producer.bad_bodies[:2]}"
    )
    result.check(set(producer.failed) <= {"503"}, f"other failures: {dict(producer.failed)}")
    result.check(producer.slowest < 6.0, f"an answer took {producer.slowest:.1f} s")
    result.check(not exits, f"a worker exited ({exits})")
    result.passed = not result.errors
    return result


def ingest_cost(requests: int = 300) -> dict[str, float]:
    """Events/s through the API (10 events a request, one client) with the
    embedded Redis on ``appendfsync always`` versus ``everysec``."""
    out: dict[str, float] = {}
    for mode in ("always", "everysec"):
        with Stack(workers=0, appendfsync=mode) as stack, stack.http(timeout=10) as client:
            client.post("/stream", json={"name": "b", "uid": "b"}).raise_for_status()
            events = {"events": [{"eventType": "e", "payload": "{}"}] * 10}
            t = time.monotonic()
            for _ in range(requests):
                r = client.post("/stream/b/events", json=events)
                if r.status_code != 202:
                    raise httpx.HTTPError(f"{r.status_code} {r.text}")
            out[f"events_per_s_{mode}"] = round(requests * 10 / (time.monotonic() - t))
    return out
