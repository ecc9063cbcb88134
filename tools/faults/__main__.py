"""``python -m tools.faults [--short]``: run every fault scenario and
print one JSON object ``{"passed", "seconds", "scenarios": {name: result}}``.

The full run takes about 8 minutes (20 worker kills, a 2-minute receiver
outage, 200 hung receivers, ...); ``--short`` runs fewer kills, shorter
outages and 20 hung receivers (about 100 s). ``--sink-type http`` runs
``worker_sigkill`` and ``receiver_down`` against an ``http`` sink instead, its
receiver verifying every request's signature with svix's ``Webhook`` (the svix
SDK must be installed: ``scripts/test`` installs it).
Exit status 0 when every scenario passed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable

from tools.faults import harness, isolation, processes, sinks
from tools.faults.harness import Result

#: The scenarios ``--sink-type http`` runs (the others test otelTracing specifics).
HTTP_SCENARIOS = ("worker_sigkill", "receiver_down")


def scenarios(short: bool) -> list[tuple[str, Callable[[], Result]]]:
    if short:
        return [
            ("worker_sigkill", lambda: processes.worker_kill(kills=4)),
            ("api_sigkill", lambda: processes.api_kill(kills=1)),
            ("redis_sigkill", lambda: processes.redis_kill(kills=1, outage=2.0)),
            ("receiver_down", lambda: sinks.receiver_outage(5.0, "1s,1s,2s,2s,4s,4s,8s")),
            ("slow_receivers", lambda: sinks.slow_receivers(delay=4.0, drip=0.5)),
            ("bad_handlers", lambda: sinks.bad_handlers()),
            ("hung_receivers", lambda: isolation.hung_receivers(hung=20, hosts=2, seconds=3)),
            ("big_outputs", lambda: isolation.big_outputs(big=2, events=20)),
        ]
    return [
        ("worker_sigkill", lambda: processes.worker_kill(kills=20)),
        ("api_sigkill", lambda: processes.api_kill(kills=3)),
        ("redis_sigkill", lambda: processes.redis_kill(kills=2, outage=5.0)),
        (
            "receiver_down",
            lambda: sinks.receiver_outage(120.0, "1s,2s,4s,8s,15s,15s,15s,15s,15s,15s,15s,15s"),
        ),
        ("slow_receivers", lambda: sinks.slow_receivers(delay=10.0, drip=0.5)),
        ("bad_handlers", lambda: sinks.bad_handlers()),
        ("hung_receivers", lambda: isolation.hung_receivers(hung=20, hosts=2, seconds=20)),
        ("hung_receivers_200", lambda: isolation.hung_receivers(hung=200, hosts=10, seconds=25)),
        ("big_outputs", lambda: isolation.big_outputs(big=4, events=50)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/faults", description=__doc__)
    parser.add_argument("--short", action="store_true", help="the quick form (tests)")
    parser.add_argument("--only", action="append", help="run only these scenarios")
    parser.add_argument(
        "--sink-type",
        choices=("otelTracing", "http"),
        default="otelTracing",
        help="the type of the scenarios' sinks (http: worker_sigkill and receiver_down,"
        " each request's signature verified with svix's Webhook)",
    )
    parser.add_argument(
        "--ingest-cost",
        action="store_true",
        help="also measure API ingest with appendfsync always vs everysec",
    )
    args = parser.parse_args(argv)
    harness.SINK_TYPE = args.sink_type
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    started = time.monotonic()
    out: dict[str, object] = {}
    for name, run in scenarios(args.short):
        if args.only and name not in args.only:
            continue
        if args.sink_type == "http" and name not in HTTP_SCENARIOS:
            continue
        print(f"faults: {name} ...", file=sys.stderr, flush=True)
        try:
            result = run()
            out[name] = {"passed": result.passed, **result.as_dict()}
        except Exception as exc:  # noqa: BLE001 - report, go on with the next scenario
            traceback.print_exc()
            out[name] = {"passed": False, "errors": [f"{type(exc).__name__}: {exc}"]}
    report: dict[str, object] = {
        "passed": all(r["passed"] for r in out.values()),  # type: ignore[index]
        "short": args.short,
        "sink_type": args.sink_type,
        "seconds": round(time.monotonic() - started, 1),
        "scenarios": out,
    }
    if args.ingest_cost:
        report["ingest"] = processes.ingest_cost()
    print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
