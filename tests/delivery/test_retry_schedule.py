from __future__ import annotations

import random

import pytest

from streamsink.delivery.retry import (
    DEFAULT_SCHEDULE_TEXT,
    SVIX_DELAYS,
    SVIX_SCHEDULE_TEXT,
    RetrySchedule,
    format_duration,
    next_delay,
    parse_duration,
    parse_schedule,
)
from streamsink.settings import Settings


def test_default_is_exponential_1s_to_60s() -> None:
    assert DEFAULT_SCHEDULE_TEXT == "1s..60s"
    assert Settings.model_fields["retry_schedule"].default == DEFAULT_SCHEDULE_TEXT
    default = RetrySchedule()
    assert default.exponential and default.max_attempts is None
    assert str(default) == "1s..1m" and RetrySchedule.parse(str(default)) == default
    assert RetrySchedule.parse("exponential") == RetrySchedule.parse(DEFAULT_SCHEDULE_TEXT)
    assert default.max_retry_after == 300 and default.max_elapsed == 24 * 3600


def test_svix_list_stays_available() -> None:
    assert SVIX_DELAYS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    assert parse_schedule(SVIX_SCHEDULE_TEXT) == SVIX_DELAYS
    svix = RetrySchedule.parse(SVIX_SCHEDULE_TEXT, jitter=0)
    assert str(svix) == SVIX_SCHEDULE_TEXT and svix.max_attempts == 8
    assert [svix.next_delay(n) for n in range(1, 9)] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
        None,
    ]


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


def test_list_without_jitter_follows_schedule_then_exhausts() -> None:
    schedule = RetrySchedule.parse("0,5s,5m", jitter=0)
    assert [schedule.next_delay(n) for n in range(4)] == [0, 5, 300, None]
    assert schedule.exhausted(3) and not schedule.exhausted(2)
    with pytest.raises(ValueError):
        schedule.next_delay(-1)


def test_exponential_base_doubles_from_1s_to_the_60s_cap() -> None:
    schedule = RetrySchedule.parse("1s..60s", jitter=0)
    assert [schedule.next_delay(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert schedule.next_delay(10**6) == 60  # never exhausted, no overflow
    assert not schedule.exhausted(10**6)
    assert RetrySchedule.parse("500ms..2s", jitter=0).next_delay(4) == 2
    assert str(RetrySchedule.parse("500ms..2m")) == "500ms..2m"


def test_exponential_jitter_stays_within_20_percent_and_under_the_cap() -> None:
    schedule = RetrySchedule.parse("1s..60s", rng=random.Random(3))
    for n, base in ((1, 1), (2, 2), (3, 4), (6, 32)):
        waits = [schedule.next_delay(n) for _ in range(300)]
        assert all(0.8 * base <= w <= 1.2 * base for w in waits), (n, min(waits), max(waits))  # type: ignore[operator]
        assert len(set(waits)) > 250  # really jittered
    capped = [schedule.next_delay(7) for _ in range(300)]
    assert all(48 <= w <= 60 for w in capped)  # type: ignore[operator]
    # Ranges of successive waits do not overlap: the waits really grow.
    assert 1.2 * 1 < 0.8 * 2 and 1.2 * 2 < 0.8 * 4


@pytest.mark.parametrize("bad", ["2s..1s", "0..5s", "1s..", "..5s", "1x..5s"])
def test_bad_exponential_spellings_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        RetrySchedule.parse(bad)
    with pytest.raises(ValueError, match="retry_schedule"):
        Settings(retry_schedule=bad)


def test_jitter_spreads_list_delays_within_bounds() -> None:
    schedule = RetrySchedule.parse("0,10s,100s", jitter=0.2, rng=random.Random(7))
    first = [schedule.next_delay(1) for _ in range(500)]
    assert all(8 <= d <= 12 for d in first)  # type: ignore[operator]
    assert len(set(first)) > 400
    assert all(schedule.next_delay(0) == 0 for _ in range(50))
    assert all(80 <= schedule.next_delay(2) <= 120 for _ in range(200))  # type: ignore[operator]


def test_retry_after_is_the_wait_capped_and_never_exhausted() -> None:
    schedule = RetrySchedule.parse("0,5s,5m", jitter=0.2, max_retry_after=300)
    assert schedule.next_delay(1, retry_after=120) == 120  # later than the schedule
    assert schedule.next_delay(2, retry_after=1) == 1  # earlier than the schedule: THE wait
    assert schedule.next_delay(1, retry_after=10**9) == 300  # capped
    assert schedule.next_delay(3, retry_after=30) == 30  # a throttled answer is no failure count
    assert 4 <= schedule.next_delay(1, retry_after=0) <= 6  # type: ignore[operator]
    assert 4 <= schedule.next_delay(1, retry_after=None) <= 6  # type: ignore[operator]
    assert RetrySchedule.throttled(1) and RetrySchedule.throttled(0.5)
    assert not RetrySchedule.throttled(0) and not RetrySchedule.throttled(None)


def test_decide_gives_up_after_max_elapsed_and_shortens_the_last_wait() -> None:
    schedule = RetrySchedule.parse("1s..60s", jitter=0, max_elapsed=100)
    assert schedule.decide(1, 0).delay == 1
    assert schedule.decide(7, 50).delay == 50  # 60 s would pass the limit: try at it
    assert schedule.decide(3, 10, retry_after=200).delay == 90  # Retry-After too
    end = schedule.decide(8, 100)
    assert end.delay is None
    assert "STREAMSINK_RETRY_MAX_ELAPSED=100s" in end.why and "without a success" in end.why
    assert schedule.decide(2, 120, retry_after=1).delay is None  # throttled: still bounded
    listed = RetrySchedule.parse("0,1s", jitter=0)
    out = listed.decide(2, 5)
    assert out.delay is None and "retries exhausted after 2 attempts" in out.why
    assert "STREAMSINK_RETRY_SCHEDULE=0,1s" in out.why
    assert RetrySchedule.parse("1s..60s", max_elapsed=0).decide(1, 0).delay is None


def test_validation() -> None:
    with pytest.raises(ValueError):
        RetrySchedule(())
    with pytest.raises(ValueError):
        RetrySchedule((1,), jitter=1.0)
    with pytest.raises(ValueError):
        RetrySchedule((-1,))
    with pytest.raises(ValueError):
        RetrySchedule(None, initial=0)
    with pytest.raises(ValueError):
        RetrySchedule(max_elapsed=-1)


def test_duration_settings_take_units() -> None:
    s = Settings(retry_max_elapsed="36h", delivery_max_retry_after="2m")
    assert s.retry_max_elapsed == 36 * 3600 and s.delivery_max_retry_after == 120
    assert Settings(retry_max_elapsed=90).retry_max_elapsed == 90
    with pytest.raises(ValueError, match="retry_max_elapsed"):
        Settings(retry_max_elapsed="soon")


def test_module_level_next_delay_uses_default() -> None:
    assert next_delay(0) == 0
    assert 0.8 <= next_delay(1) <= 1.2  # type: ignore[operator]
    assert 48 <= next_delay(100) <= 60  # type: ignore[operator]
