"""A small smoke run of ``scripts/bench``, every phase at a tiny size: the JSON
shape and no lost event. No timing assertions: figures depend on the machine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]  # tools/ is run from the checkout

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
    # the peer
    "peer_otel_sdk_events_per_s",
    "e2e_over_peer",
    # fanout
    "fanout_events_per_s",
    "fanout_latency_ms_p99",
    "fanout_over_e2e",
    # idle
    "idle_redis_cmds_per_s",
    "idle_worker_cpu_pct",
    # soak
    "soak_used_memory_growth_mb",
    "soak_worker_rss_growth_mb",
    "soak_aof_growth_mb",
    "soak_lost",
    "soak_down_lost",
}
PHASES = ("ingest", "peer", "ceiling", "e2e", "latency", "memory", "fanout", "idle", "soak")


def test_bench_smoke_run_of_every_phase_prints_the_figures_and_loses_nothing() -> None:
    args = ["--events", "400", "--rate", "200", "--duration", "1", "--workers", "1"]
    args += ["--api-processes", "1"]
    args += ["--memory-sinks", "3", "--ceiling-seconds", "0.01", "--streams", "2"]
    args += ["--peer-check-events", "50", "--fanout-streams", "20"]
    args += ["--idle-sinks", "200", "--idle-seconds", "2", "--idle-settle", "0.5"]
    args += ["--soak", "4", "--soak-rate", "500", "--soak-streams", "2", "--soak-down-sink"]
    out = subprocess.run(
        [sys.executable, "-m", "tools.bench", *args],
        cwd=ROOT,
        capture_output=True,
        timeout=110,
    )
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    report = orjson.loads(out.stdout)
    assert set(report) >= FIGURES
    for phase in PHASES:
        assert 0 <= report[f"{phase}_cpu_steal_pct"] <= 100
        assert 0 <= report[f"{phase}_cpu_idle_pct"] <= 100
    assert report["lost"] == 0
    assert report["duplicated"] == 0
    assert report["soak_lost"] == 0 and report["soak_down_lost"] == 0
    details = report["details"]
    assert details["peer_check_equal"] is True and details["peer_check_spans"] == 54
    assert details["fanout_streams"] == 20 and details["fanout_lost"] == 0
    assert details["fanout_own_code"] is False
    assert details["idle_sinks"] == 200 and report["idle_redis_cmds_per_s"] > 0
    assert details["soak_down_acked"] > 0  # the down sink's stream was acked, then delivered
    assert details["soak_start"]["used_memory_mb"] > 0 and details["soak_end"]["aof_mb"] > 0
    assert report["e2e_events_per_s"] > 0 and report["ingest_events_per_s"] > 0
    assert report["peer_otel_sdk_events_per_s"] > 0 and report["fanout_events_per_s"] > 0
    assert {r["batch_size"] for r in report["ceiling"]["results"]} == {1, 100, 1000}
    assert b"e2e_events_per_s" in out.stderr and b"soak steal/idle %" in out.stderr
