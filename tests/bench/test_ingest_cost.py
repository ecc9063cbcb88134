"""``tools.bench.ingest_cost`` times real appends: each kind writes what it says."""

from __future__ import annotations

from tools.bench.ingest_cost import append


def test_append_costs_every_kind_and_writes_every_event() -> None:
    costs = append(16, 1)
    assert set(costs) == {"entry_per_event", "entry_per_append", "events_written"}
    kinds = ("entry_per_event", "entry_per_append")
    assert all(len(costs[kind]) == 1 and costs[kind][0] >= 0 for kind in kinds), costs
    assert costs["events_written"] == {"entry_per_event": 1600, "entry_per_append": 1600}
