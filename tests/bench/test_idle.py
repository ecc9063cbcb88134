"""The bench's idle phase (``tools.bench.scale.idle``) on a real stack
(embedded Redis, API, two worker processes): idle sinks add no steady Redis
commands. Counts commands (from ``INFO commandstats``), not time."""

from __future__ import annotations

import argparse

from streamsink.storage import keys
from tools.bench import scale
from tools.bench.harness import Bench
from tools.devstack import Stack, free_port


def _args(sinks: int, settle: float) -> argparse.Namespace:
    return argparse.Namespace(
        handler="svix-webhook-attempts.js",
        batch_size=100,
        idle_sinks=sinks,
        idle_sinks_per_stream=1,
        idle_settle=settle,
        idle_seconds=6,
    )


def test_many_idle_sinks_cost_the_same_few_commands_as_none() -> None:
    with Stack(workers=2, appendfsync="everysec") as stack:
        stack.wait_workers_registered()
        port = free_port()  # nothing listens: an idle sink is never called
        none = scale.idle(Bench(_args(0, 1), stack, port))
        client = stack.redis_client()
        # as on a fresh data dir before the reaper's first round: its one-time
        # build would walk every sink that exists then (not steady state), so
        # the phase makes its sinks only once the build is done
        client.delete(keys.HOUSEKEEPING_BUILT)
        many = scale.idle(Bench(_args(1500, 1), stack, port))
        counts = client.hgetall(keys.SINK_STATUS_COUNTS)
        client.close()
    assert many["idle_sinks"] == 1500
    assert counts[b"enabled"] == b"1500"  # what the sinks gauge reads
    # Housekeeping of two workers (RQ's scheduler ticks, heartbeats, reaper
    # rounds) is a few dozen commands a second with or without sinks; the
    # walk this replaced cost ~5 commands per sink and round (~1,500/s here).
    assert many["idle_redis_cmds_per_s"] < 100, many
    assert many["idle_redis_cmds_per_s"] < none["idle_redis_cmds_per_s"] + 30, (none, many)
