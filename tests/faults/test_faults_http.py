"""The fault suite's ``worker_sigkill`` and ``receiver_down`` scenarios against
an ``http`` sink (``scripts/faults --short --sink-type http``): nothing acked is
lost, and every request the receiver got verified with svix's ``Webhook``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_fault_suite_short_http_sinks() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    done = subprocess.run(
        [sys.executable, "-m", "tools.faults", "--short", "--sink-type", "http"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.stdout.strip(), done.stderr[-4000:]
    report = json.loads(done.stdout)
    print(json.dumps(report, indent=1))
    scenarios = report["scenarios"]
    assert set(scenarios) == {"worker_sigkill", "receiver_down"}
    for name, result in scenarios.items():
        assert result["passed"], f"{name}: {json.dumps(result, indent=1)}\n{done.stderr[-3000:]}"
        assert result["sink_type"] == "http" and result["bad_signatures"] == 0
        assert result["lost"] == 0 and result["verified_requests"] > 0
    assert report["passed"] and done.returncode == 0
