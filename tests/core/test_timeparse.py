from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from streamsink.transform.timeparse import (
    TimeParseError,
    format_ns,
    parse_iso8601_ns,
    parse_time_ns,
)

BASE = 1755617093 * 10**9  # 2025-08-19T15:24:53Z


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2025-08-19T15:24:53Z", BASE),
        ("2025-08-19T15:24:53.291Z", BASE + 291_000_000),
        ("2025-08-19T15:24:53.123456789Z", BASE + 123_456_789),
        ("2025-08-19T15:24:53.000000001Z", BASE + 1),
        ("2025-08-19T15:24:53.1234567891234Z", BASE + 123_456_789),  # truncated past ns
        ("2025-08-19T15:24:53.5", BASE + 500_000_000),  # no offset: UTC
        ("2025-08-19 15:24:53,25z", BASE + 250_000_000),
        ("2025-08-19t15:24:53Z", BASE),
        ("2025-08-19T17:24:53.000000007+02:00", BASE + 7),
        ("2025-08-19T09:54:53-0530", BASE),
        ("2025-08-19T16:24:53+01", BASE),
        ("2025-08-19T15:24Z", BASE - 53 * 10**9),
        ("2025-08-19", BASE - (15 * 3600 + 24 * 60 + 53) * 10**9),
        ("1970-01-01T00:00:00Z", 0),
        ("2024-02-29T00:00:00Z", 1709164800 * 10**9),
        ("2262-04-11T23:47:16.854775807Z", 2**63 - 1),
    ],
)
def test_iso8601_exact_nanoseconds(text: str, ns: int) -> None:
    assert parse_iso8601_ns(text) == ns
    assert parse_time_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", 'not an ISO 8601 time: "yesterday"'),
        ("2025-13-01T00:00:00Z", "month out of range"),
        ("2023-02-29T00:00:00Z", "day out of range"),
        ("2025-04-31", "day out of range"),
        ("2025-08-19T24:00:00Z", "time of day out of range"),
        ("2025-08-19T15:60:00Z", "time of day out of range"),
        ("2025-08-19T15:24:60Z", "time of day out of range"),
        ("2025-08-19T15:24:53+24:00", "UTC offset out of range"),
        ("1969-12-31T23:59:59Z", "outside 1970-01-01..2262-04-11"),
        ("2262-04-11T23:47:16.854775808Z", "outside"),
        ("2025-08-19T15:24:53.Z", "not an ISO 8601 time"),
        ("2025-8-19", "not an ISO 8601 time"),
        (" 2025-08-19", "not an ISO 8601 time"),
        ("", "not an ISO 8601 time"),
    ],
)
def test_bad_iso8601(text: str, message: str) -> None:
    with pytest.raises(TimeParseError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_time_ns(text)


def test_epoch_numbers_are_milliseconds() -> None:
    assert parse_time_ns(1755617093291) == BASE + 291_000_000
    assert parse_time_ns(1755617093291.5) == BASE + 291_500_000
    assert parse_time_ns(0) == 0
    with pytest.raises(TimeParseError, match="outside"):
        parse_time_ns(-1)
    for bad in (True, None, [], {}):
        with pytest.raises(TimeParseError):
            parse_time_ns(bad)


def test_agrees_with_datetime_on_random_times() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        secs = rng.randrange(0, 9_000_000_000)
        micros = rng.randrange(0, 10**6)
        offset = timedelta(minutes=rng.randrange(-23 * 60, 23 * 60 + 1))
        dt = datetime.fromtimestamp(secs, UTC).replace(microsecond=micros)
        text = dt.astimezone(timezone(offset)).isoformat()
        assert parse_iso8601_ns(text) == secs * 10**9 + micros * 1000, text


def test_format_ns_round_trips() -> None:
    for ns in (0, 1, BASE + 123_456_789, 2**63 - 1, 951782400 * 10**9):
        assert parse_iso8601_ns(format_ns(ns)) == ns
    assert format_ns(BASE + 1) == "2025-08-19T15:24:53.000000001Z"


def test_fast_path_for_cached_minutes_agrees_with_full_parser() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        secs = rng.randrange(0, 4_000_000_000)
        digits = rng.randrange(0, 12)
        frac = "".join(rng.choice("0123456789") for _ in range(digits))
        base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        text = f"{base}.{frac}Z" if frac else f"{base}Z"
        expected = secs * 10**9 + int((frac + "0" * 9)[:9] or 0)
        assert parse_iso8601_ns(text) == expected  # full parser, fills the cache
        assert parse_iso8601_ns(text) == expected  # fast path
        assert parse_iso8601_ns(text.lower()) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "2025-08-19T15:24:60Z",
        "2025-08-19T15:24:5xZ",
        "2025-08-19T15:24:53.Z",
        "2025-08-19T15:24:53.1a2Z",
        "2025-08-19T15:24:53.\u0661Z",
        "2025-08-19T15:24:\u00b253Z",
    ],
)
def test_fast_path_rejects_bad_tails(bad: str) -> None:
    parse_iso8601_ns("2025-08-19T15:24:00Z")  # prefix cached
    with pytest.raises(TimeParseError):
        parse_iso8601_ns(bad)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_not_times(value: float) -> None:
    with pytest.raises(TimeParseError, match="not a time"):  # was a ValueError from math.floor
        parse_time_ns(value)
