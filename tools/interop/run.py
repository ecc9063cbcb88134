"""Interop with real receivers (run by scripts/interop; see docs/interop.md).

Starts ``streamsink serve`` (embedded Redis) and, one after the other, MLflow
and Arize Phoenix servers on 127.0.0.1; for each receiver and case creates a
stream and an ``otelTracing`` sink with ``encoding: "auto"`` and a bundled
handler, posts the sample events, reads the spans back through the receiver's
own API and checks trace grouping, parents, names, times, model and token
counts, the sink's state and negotiated encoding. Prints one JSON object
``{receiver: {case: {pass, ...details}}}`` on stdout; exit status 1 when any
case failed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cases import ROOT, Case, Expected, cases
from procs import Proc, clean_env, free_port, is_loopback
from receivers import RECEIVERS, Receiver

#: The encoding ``auto`` must settle on: Phoenix refuses JSON with 415.
WANT_ENCODING = {"mlflow": "json", "phoenix": "protobuf"}


def log(msg: str) -> None:
    print(f"[interop] {msg}", file=sys.stderr, flush=True)


class Streamsink:
    """``streamsink serve`` on 127.0.0.1 (embedded Redis under ``work``)."""

    def __init__(self, work: Path) -> None:
        self.token = "interop-" + secrets.token_hex(8)
        port = free_port()
        cmd = [
            sys.executable, "-m", "streamsink", "serve", "--port", str(port),
            "--host", "127.0.0.1", "--auth-token", self.token, "--data-dir", str(work / "data"),
        ]  # fmt: skip
        self.proc = Proc("streamsink", cmd, clean_env(), work)
        self.proc.wait_http(f"http://127.0.0.1:{port}/health", timeout=60)
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30.0,
            trust_env=False,
        )

    def call(self, method: str, path: str, expect: int, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code != expect:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def stop(self) -> None:
        self.http.close()
        self.proc.stop()


class Delivery:
    """One case on one receiver: its stream, sink and expected spans."""

    def __init__(self, ss: Streamsink, rx: Receiver, case: Case) -> None:
        self.ss, self.rx, self.case = ss, rx, case
        uid = f"{rx.name}-{case.name}"
        self.stream = ss.call("POST", "/stream", 201, json={"name": uid, "uid": uid})["id"]
        url, headers = rx.sink(case.name)
        config = {"url": url, "encoding": "auto", **({"headers": headers} if headers else {})}
        sink = ss.call("POST", f"/stream/{self.stream}/sink", 201, json={
            "type": "otelTracing", "uid": uid, "config": config,
        })  # fmt: skip
        self.sink_id = sink["id"]
        self.sink_path = f"/stream/{self.stream}/sink/{self.sink_id}"
        ss.call("PATCH", f"{self.sink_path}/transformation", 200, json={"code": case.code})
        self.expected: dict[str, Expected] = {e.span_id: e for e in case.expect(self.stream)}
        self.trace_ids = {e.trace_id for e in self.expected.values()}
        body = {
            "events": [{"eventType": e["eventType"], "payload": e["payload"]} for e in case.events]
        }
        ss.call("POST", f"/stream/{self.stream}/events", 202, json=body)
        self.spans: dict[str, dict[str, Any]] = {}
        self.totals: dict[str, tuple[int, int]] = {}

    def sink(self) -> dict[str, Any]:
        return self.ss.call("GET", self.sink_path, 200)

    def poll(self) -> bool:
        """Read back; True when done (all spans there, or the sink gave up)."""
        self.spans, self.totals = self.rx.read(self.case.name, self.trace_ids)
        return self.expected.keys() <= self.spans.keys() or self.sink()["status"] == "disabled"

    def verdict(self) -> dict[str, Any]:
        errors: list[str] = []
        sink = self.sink()
        attempts = self.ss.call("GET", f"{self.sink_path}/attempt", 200, params={"limit": 50})
        codes = [
            f"{a.get('statusCode', a.get('responseStatusCode'))} {a.get('outcome', '')}".strip()
            for a in reversed(attempts.get("data", []))
        ]
        encoding = sink.get("negotiatedEncoding") or "json"
        if sink["status"] != "enabled":
            errors.append(f"sink {sink['status']}: {sink.get('failureReason')}")
        if encoding != WANT_ENCODING[self.rx.name]:
            errors.append(f"negotiatedEncoding {encoding!r}, want {WANT_ENCODING[self.rx.name]!r}")
        tol = self.rx.time_tolerance_ns
        for span_id, want in self.expected.items():
            got = self.spans.get(span_id)
            where = f"span {want.name!r} ({span_id})"
            if got is None:
                errors.append(f"{where}: missing")
                continue
            checks = [
                ("trace", got["traceId"], want.trace_id),
                ("parent", got["parentId"] or None, want.parent_id),
                ("name", got["name"], want.name),
            ]
            if want.models:
                if got["model"] not in want.models:
                    errors.append(f"{where}: model {got['model']!r} not in {want.models}")
                checks += [("tokens", tuple(got["tokens"] or ()), want.tokens)]
            errors += [f"{where}: {what} {g!r} != {w!r}" for what, g, w in checks if g != w]
            for what, g, w in (
                ("start", got["start"], want.start_ns),
                ("end", got["end"], want.end_ns),
            ):
                if abs(int(g) - w) > tol:
                    errors.append(f"{where}: {what} {g} ns != {w} ns (tolerance {tol} ns)")
        extra = sorted(set(self.spans) - set(self.expected))
        if extra:
            errors.append(f"unexpected spans {extra}")
        want_totals: dict[str, tuple[int, int]] = {}
        for e in self.expected.values():
            if e.tokens:
                a, b = want_totals.get(e.trace_id, (0, 0))
                want_totals[e.trace_id] = (a + e.tokens[0], b + e.tokens[1])
        for trace_id, (a, b) in want_totals.items():
            got_totals = tuple(self.totals.get(trace_id) or ())
            if got_totals != (a, b):
                errors.append(f"trace {trace_id} token totals {got_totals} != {(a, b)}")
        details: dict[str, Any] = {
            "pass": not errors,
            "spans": f"{len(set(self.spans) & set(self.expected))}/{len(self.expected)}",
            "traces": len({s["traceId"] for s in self.spans.values()}),
            "times": f"within {tol} ns" if tol else "exact",
            "encoding": encoding,
            "attempts": codes,
        }
        projects = {s["project"] for s in self.spans.values() if s.get("project")}
        if projects:
            details["projects"] = sorted(projects)
        if want_totals:
            details["tokens"] = {t: list(self.totals.get(t) or ()) for t in sorted(want_totals)}
            shown = {self.spans.get(e.span_id, {}).get("model") for e in self.expected.values()}
            details["models"] = sorted(m for m in shown if m)
        if errors:
            details["errors"] = errors[:20]
        return details


def run_receiver(name: str, ss: Streamsink, venv: Path, work: Path, timeout: float) -> dict:
    rx = RECEIVERS[name](venv, work)
    out: dict[str, Any] = {}
    try:
        log(f"starting {name} from {venv}")
        t0 = time.monotonic()
        rx.start()
        log(f"{name} ready in {time.monotonic() - t0:.0f} s on {rx.base}")
        deliveries = [Delivery(ss, rx, case) for case in cases()]
        pending = list(deliveries)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            time.sleep(1.0)
            pending = [d for d in pending if not d.poll()]
        for d in deliveries:
            out[d.case.name] = d.verdict()
        assert rx.proc is not None
        addresses = rx.proc.listening()
        out["loopback-only"] = {
            "pass": bool(addresses) and all(map(is_loopback, addresses)),
            "listening": addresses,
        }
    except Exception as exc:  # a receiver that fails to start fails its row, not the run
        out["error"] = {"pass": False, "detail": f"{type(exc).__name__}: {exc}"}
        if rx.proc is not None:
            out["error"]["log"] = rx.proc.tail(1500)
    finally:
        rx.stop()
    return out


def render(table: dict[str, dict[str, Any]]) -> str:
    """The table as JSON with one line per case."""
    rows = []
    for receiver, cases_ in table.items():
        lines = [f"    {json.dumps(case)}: {json.dumps(row)}" for case, row in cases_.items()]
        rows.append(f"  {json.dumps(receiver)}: {{\n" + ",\n".join(lines) + "\n  }")
    return "{\n" + ",\n".join(rows) + "\n}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", default="mlflow,phoenix", help="comma-separated")
    parser.add_argument(
        "--venvs",
        type=Path,
        default=ROOT / ".cache" / "interop",
        help="where <receiver>-venv directories are",
    )
    parser.add_argument("--timeout", type=float, default=120, help="seconds per receiver")
    parser.add_argument("--work", type=Path, help="logs and data (default: a temp dir)")
    args = parser.parse_args()  # fmt: skip
    work = args.work or Path(tempfile.mkdtemp(prefix="streamsink-interop-"))
    work.mkdir(parents=True, exist_ok=True)
    log(f"logs and data under {work}")
    ss = Streamsink(work)
    table: dict[str, Any] = {}
    try:
        for name in args.receivers.split(","):
            table[name] = run_receiver(name, ss, args.venvs / f"{name}-venv", work, args.timeout)
        addresses = ss.proc.listening()
        table["streamsink"] = {
            "loopback-only": {
                "pass": bool(addresses) and all(map(is_loopback, addresses)),
                "listening": addresses,
            }
        }
    finally:
        ss.stop()
    print(render(table))
    ok = all(row.get("pass") for cases_ in table.values() for row in cases_.values())
    log("all cases pass" if ok else "FAILED: see the table")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
