"""The fault suite's short form (``scripts/faults --short``) inside the test
suite: fewer kills and shorter outages, same checks, ``lost`` 0 everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_fault_suite_short() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    done = subprocess.run(
        [sys.executable, "-m", "tools.faults", "--short"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert done.stdout.strip(), done.stderr[-4000:]
    report = json.loads(done.stdout)
    print(json.dumps(report, indent=1))
    failed = {k: v for k, v in report["scenarios"].items() if not v["passed"]}
    assert not failed, f"{json.dumps(failed, indent=1)}\n{done.stderr[-3000:]}"
    assert all(v["lost"] == 0 for v in report["scenarios"].values())
    assert report["passed"] and done.returncode == 0
