from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import orjson

from tools.bench.ceiling import main


def test_bench_prints_one_json_object_and_a_table() -> None:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert main(["--seconds", "0.01"]) == 0
    report = orjson.loads(out.getvalue())
    cases = {(r["handler"], r["batch_size"]) for r in report["results"]}
    assert cases == {(h, n) for h in ("default", "webhook-attempts") for n in (1, 100, 1000)}
    assert all(r["events_per_sec"] > 0 for r in report["results"])
    assert "events/s" in err.getvalue()
