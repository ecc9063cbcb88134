"""``tools.bench.per_sink`` measures what it says: a real isolate's stages and
RQ's path for real jobs on a throwaway embedded Redis."""

from __future__ import annotations

from tools.bench.per_sink import isolate_costs, rq_job_costs


def test_isolate_costs_has_every_stage() -> None:
    costs = isolate_costs(2, 10, 2)
    assert set(costs) == {"create", "first_call", "warm_call", "close", "heap_mb"}
    # every stage costs some CPU, even a sub-millisecond one (warm_call, close)
    assert all(costs[stage] > 0 for stage in costs), costs


def test_rq_job_costs_runs_every_job() -> None:
    costs = rq_job_costs(20)
    assert costs["worker_ms"] > 0 and costs["redis_ms"] > 0
