"""A small smoke run of ``scripts/bench``: the JSON shape and no lost event.
No timing assertions: figures depend on the machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

FIGURES = {
    "e2e_events_per_s",
    "ingest_events_per_s",
    "ceiling_events_per_s",
    "e2e_over_ceiling",
    "latency_ms_p50",
    "latency_ms_p99",
    "worker_rss_mb",
    "lost",
    "duplicated",
}


def test_bench_smoke_run_prints_the_figures_and_loses_nothing() -> None:
    args = ["--events", "400", "--rate", "200", "--duration", "1", "--workers", "1"]
    args += ["--memory-sinks", "3", "--ceiling-seconds", "0.01", "--streams", "2"]
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", *args],
        cwd=Path(__file__).resolve().parents[2],  # tools/ is run from the checkout
        capture_output=True,
        check=True,
        timeout=100,
    )
    report = orjson.loads(out.stdout)
    assert set(report) >= FIGURES
    assert report["lost"] == 0
    assert report["duplicated"] == 0
    assert report["e2e_events_per_s"] > 0 and report["ingest_events_per_s"] > 0
    assert {r["batch_size"] for r in report["ceiling"]["results"]} == {1, 100, 1000}
    assert b"e2e_events_per_s" in out.stderr
