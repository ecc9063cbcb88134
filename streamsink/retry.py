"""Retry schedule for sink delivery (pure: no I/O, no clock).

The default follows Svix webhooks: the first attempt runs immediately, then a
failed attempt is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h
(8 attempts in all). As a setting it is written ``"0,5s,5m,30m,2h,5h,10h,10h"``.

Attempts are numbered from 1. ``delays[n]`` is the wait after attempt ``n``
failed before attempt ``n + 1``; ``delays[0]`` is the wait before the first
attempt. When ``n == len(delays)`` the schedule is exhausted.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

DEFAULT_DELAYS: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
DEFAULT_SCHEDULE_TEXT = "0,5s,5m,30m,2h,5h,10h,10h"
DEFAULT_JITTER = 0.2
DEFAULT_MAX_RETRY_AFTER = 3600.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")


def parse_duration(text: str) -> float:
    """``"5"``/``"5s"`` -> 5.0, ``"5m"`` -> 300.0, ``"2h"``, ``"1d"``, ``"250ms"``."""
    match = _TOKEN.match(text.strip().lower())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number with s, m, h, d or ms")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: 300 -> ``"5m"``, 7200 -> ``"2h"``, 0 -> ``"0"``."""
    if seconds == 0:
        return "0"
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    if float(seconds * 1000).is_integer():
        return f"{int(seconds * 1000)}ms"
    return f"{seconds}s"


def parse_schedule(text: str | Iterable[float | int | str]) -> tuple[float, ...]:
    """Delays from ``"0,5s,5m"`` (commas and/or spaces) or a sequence of numbers/strings."""
    items: list[float | int | str]
    if isinstance(text, str):
        items = [t for t in re.split(r"[,\s]+", text.strip()) if t]
    else:
        items = list(text)
    if not items:
        raise ValueError("a retry schedule needs at least one delay")
    delays: list[float] = []
    for item in items:
        value = parse_duration(item) if isinstance(item, str) else float(item)
        if not value >= 0 or value == float("inf"):
            raise ValueError(f"invalid delay {item!r}: must be a finite number >= 0")
        delays.append(value)
    return tuple(delays)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """An immutable, setting-friendly retry schedule.

    ``jitter`` is the relative spread (0.2 = +-20%); a zero delay stays zero.
    ``max_retry_after`` caps how far a sink's ``Retry-After`` may push a retry.
    """

    delays: tuple[float, ...] = DEFAULT_DELAYS
    jitter: float = DEFAULT_JITTER
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    _rng: random.Random = field(
        default_factory=random.Random, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if not self.delays:
            raise ValueError("a retry schedule needs at least one delay")
        if any(not d >= 0 for d in self.delays):
            raise ValueError("retry delays must be >= 0")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if not self.max_retry_after >= 0:
            raise ValueError("max_retry_after must be >= 0")

    @classmethod
    def parse(
        cls,
        text: str | Iterable[float | int | str],
        *,
        jitter: float = DEFAULT_JITTER,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        rng: random.Random | None = None,
    ) -> RetrySchedule:
        return cls(
            parse_schedule(text),
            jitter=jitter,
            max_retry_after=max_retry_after,
            _rng=rng or random.Random(),
        )

    def __str__(self) -> str:
        return ",".join(format_duration(d) for d in self.delays)

    @property
    def max_attempts(self) -> int:
        """Attempts in all, the first one included."""
        return len(self.delays)

    def exhausted(self, attempt_number: int) -> bool:
        """True when no attempt may follow attempt ``attempt_number``."""
        return attempt_number >= len(self.delays)

    def base_delay(self, attempt_number: int) -> float | None:
        """The un-jittered wait after attempt ``attempt_number`` failed (None = give up)."""
        if attempt_number < 0:
            raise ValueError("attempt_number must be >= 0")
        if attempt_number >= len(self.delays):
            return None
        return self.delays[attempt_number]

    def next_delay(self, attempt_number: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after attempt ``attempt_number`` failed, or None when exhausted.

        The scheduled delay gets +-``jitter`` (never negative; 0 stays 0). A
        ``Retry-After`` from the sink is a lower bound, capped at
        ``max_retry_after``; it never adds attempts.
        """
        base = self.base_delay(attempt_number)
        if base is None:
            return None
        delay = base
        if base > 0 and self.jitter > 0:
            delay = base * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(float(retry_after), self.max_retry_after))
        return max(0.0, delay)


DEFAULT_RETRY_SCHEDULE = RetrySchedule()


def next_delay(
    attempt_number: int,
    retry_after: float | None = None,
    schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE,
) -> float | None:
    """``schedule.next_delay(...)`` with the default Svix schedule."""
    return schedule.next_delay(attempt_number, retry_after)
