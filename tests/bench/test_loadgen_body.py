"""The load generator's bodies, filled from templates, are byte for byte the
JSON of the events (``reference_body``): the bench sends the same requests."""

from __future__ import annotations

import pytest

from tools.bench import loadgen


@pytest.mark.parametrize(
    ("first", "count"),
    [(0, 1), (1, 1), (0, 100), (7, 33), (123_456_789, 100), (10**12 + 1, 4)],
)
def test_body_for_is_the_reference_body(
    monkeypatch: pytest.MonkeyPatch, first: int, count: int
) -> None:
    now_ns = 1_764_000_000_123_456_789
    monkeypatch.setattr(loadgen.time, "time_ns", lambda: now_ns)
    assert loadgen.body_for(first, count) == loadgen.reference_body(first, count, now_ns // 1000)
