from __future__ import annotations

import random

import pytest

from streamsink.retry import (
    DEFAULT_DELAYS,
    DEFAULT_SCHEDULE_TEXT,
    RetrySchedule,
    format_duration,
    next_delay,
    parse_duration,
    parse_schedule,
)


def test_default_is_the_svix_schedule() -> None:
    assert DEFAULT_DELAYS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert parse_schedule(DEFAULT_SCHEDULE_TEXT) == DEFAULT_DELAYS
    assert str(RetrySchedule()) == DEFAULT_SCHEDULE_TEXT
    assert RetrySchedule().max_attempts == 8


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("5", 5),
        ("5s", 5),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (" 10H ", 36000),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "-5s", "5x", "abc", "5 m s", "1e3"])
def test_parse_duration_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_parse_schedule_forms() -> None:
    assert parse_schedule("0, 5s 5m,,30m") == (0, 5, 300, 1800)
    assert parse_schedule([0, 5, "1m"]) == (0, 5, 60)
    for bad in ["", " , ", [], [-1], [float("nan")], [float("inf")]]:
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_format_round_trips() -> None:
    for seconds in (0, 1, 5, 59, 60, 90, 300, 3600, 5400, 86400, 0.25):
        assert parse_duration(format_duration(seconds)) == seconds
    assert str(RetrySchedule.parse("0,90s,1.5h")) == "0,90s,90m"


def test_next_delay_without_jitter_follows_schedule_then_exhausts() -> None:
    schedule = RetrySchedule.parse("0,5s,5m", jitter=0)
    assert [schedule.next_delay(n) for n in range(4)] == [0, 5, 300, None]
    assert schedule.exhausted(3) and not schedule.exhausted(2)
    with pytest.raises(ValueError):
        schedule.next_delay(-1)


def test_jitter_bounds_and_zero_stays_zero() -> None:
    schedule = RetrySchedule.parse("0,10s,100s", jitter=0.2, rng=random.Random(7))
    first = [schedule.next_delay(1) for _ in range(500)]
    assert all(8 <= d <= 12 for d in first)
    assert len({round(d, 6) for d in first}) > 100  # actually jittered
    assert all(schedule.next_delay(0) == 0 for _ in range(50))
    assert all(80 <= schedule.next_delay(2) <= 120 for _ in range(200))  # type: ignore[operator]


def test_retry_after_is_a_capped_lower_bound() -> None:
    schedule = RetrySchedule.parse("0,5s,5m", jitter=0.2, max_retry_after=3600)
    assert schedule.next_delay(1, retry_after=120) == 120  # later than the schedule
    assert 240 <= schedule.next_delay(2, retry_after=10) <= 360  # type: ignore[operator]
    assert schedule.next_delay(1, retry_after=10**9) == 3600  # capped
    assert schedule.next_delay(0, retry_after=30) == 30
    assert schedule.next_delay(3, retry_after=30) is None  # never adds attempts
    assert 4 <= schedule.next_delay(1, retry_after=0) <= 6  # type: ignore[operator]


def test_invalid_schedule_values() -> None:
    with pytest.raises(ValueError):
        RetrySchedule(())
    with pytest.raises(ValueError):
        RetrySchedule((1,), jitter=1.0)
    with pytest.raises(ValueError):
        RetrySchedule((-1,))


def test_module_level_next_delay_uses_default() -> None:
    assert next_delay(0) == 0
    assert 4 <= next_delay(1) <= 6  # type: ignore[operator]
    assert next_delay(8) is None
