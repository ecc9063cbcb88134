"""``tools.bench.latency_path``: the probe follows every batch of a real run
(so its wrapped function names are still the engine's), and the summary
counts and orders steps right. No timing assertions."""

from __future__ import annotations

from tools.bench.latency_path import measure, summarize


def test_summary_by_how_a_batch_started() -> None:
    rows = [
        {"how": "job", "sent": 1_000, "taken": 3_000, "start": 3_500, "batch": 4_000,
         "transformed": 8_000, "posted": 9_000, "done": 10_000},
        {"how": "linger", "sent": 2_000, "start": 4_000, "batch": 4_100,
         "transformed": 7_100, "posted": 8_000, "done": 9_000},
        {"how": "linger", "sent": 0, "start": 1, "batch": 2},  # no marker: left out
        {"how": "loop", "sent": 500, "batch": 600, "transformed": 900, "posted": 1_500},
    ]  # fmt: skip
    out = summarize(rows)
    assert out["job"]["batches"] == 1 and out["linger"]["batches"] == 1
    job, linger = out["job"]["steps"], out["linger"]["steps"]
    assert job["to_job"]["p50"] == 2.0 and job["to_thread"]["p50"] == 0.5
    assert job["total"]["p99"] == 8.0 and "to_woken" not in job
    assert linger["to_woken"]["p50"] == 2.0 and linger["transform"]["p90"] == 3.0
    assert "to_job" not in linger and linger["outcome"]["p50"] == 1.0
    assert out["loop"]["batches"] == 1
    assert set(out["loop"]["steps"]) == {"transform", "post", "total"}  # no "done" noted


def test_a_short_steady_run_is_followed_batch_by_batch() -> None:
    out = measure(rate=2000, duration=2)  # 40 POSTs of 100 events, 50 ms apart
    assert out["lost"] == 0 and out["duplicated"] == 0
    batches = sum(out[how]["batches"] for how in ("job", "linger", "loop"))
    assert batches >= 40, out  # every POST's events in some batch, each probed
    assert out["linger"]["batches"] > 0, out  # steady: the sink's thread takes them
    assert set(out["linger"]["steps"]) >= {"to_woken", "transform", "post", "total"}
