"""``tools/bench/idle.py`` on a real stack (embedded Redis, API, two worker
processes): idle sinks add no steady Redis commands. Counts commands (from
``INFO commandstats``), not time."""

from __future__ import annotations

from tools.bench.idle import measure_idle
from tools.devstack import Stack


def test_many_idle_sinks_cost_the_same_few_commands_as_none() -> None:
    with Stack(workers=2, appendfsync="everysec") as stack:
        stack.wait_workers_registered()
        none = measure_idle(stack, sinks=0, seconds=6, settle=1)
        many = measure_idle(stack, sinks=1500, seconds=6, settle=6)
    assert many["idle_sinks"] == 1500
    # Housekeeping of two workers (RQ's scheduler ticks, heartbeats, reaper
    # rounds) is a few dozen commands a second with or without sinks; the
    # walk this replaced cost ~5 commands per sink and round (~1,500/s here).
    assert many["idle_redis_commands_per_s"] < 100, many
    assert many["idle_redis_commands_per_s"] < none["idle_redis_commands_per_s"] + 30, (none, many)
