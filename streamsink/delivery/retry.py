"""Retry policy for sink delivery (pure: no I/O, no clock).

The setting ``STREAMSINK_RETRY_SCHEDULE`` takes one of two spellings:

- ``"1s..60s"`` (the default; ``"exponential"`` means the same): exponential
  backoff with jitter, as OpenTelemetry exporters do. The wait after the
  first failure is about 1 s and doubles after each further failure up to a
  60 s cap (each wait is jittered by +-20%, never above the cap), so a
  collector back from a restart gets its data within a minute. Any
  ``"<first>..<cap>"`` works, e.g. ``"500ms..2m"``. There is no attempt limit:
  ``max_elapsed`` ends the retries.
- a list of waits, e.g. Svix's webhook schedule ``"0,5s,5m,30m,2h,5h,10h,10h"``:
  ``delays[n]`` is the wait after the ``n``-th failure (``delays[0]``, the wait
  before the first attempt, is unused by the engine); after
  ``len(delays) - 1`` failed retries the schedule is exhausted.

Whatever the schedule, a sink that has failed without a success for
``max_elapsed`` seconds (``STREAMSINK_RETRY_MAX_ELAPSED``, default 24 h) is
given up (disabled with the reason; its events and cursor are kept); the last
wait is shortened so that the final try happens at that limit. A receiver's
``Retry-After`` (on 429, 503 or any other retryable answer) is THE wait for
that retry, capped at ``max_retry_after`` (``STREAMSINK_DELIVERY_MAX_RETRY_AFTER``,
default 5 min), and such a throttled answer does not advance the schedule.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SVIX_DELAYS: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
SVIX_SCHEDULE_TEXT = "0,5s,5m,30m,2h,5h,10h,10h"
DEFAULT_SCHEDULE_TEXT = "1s..60s"
DEFAULT_INITIAL = 1.0
DEFAULT_MAXIMUM = 60.0
DEFAULT_JITTER = 0.2
DEFAULT_MAX_RETRY_AFTER = 300.0
DEFAULT_MAX_ELAPSED = 24 * 3600.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TOKEN = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_MAX_DOUBLINGS = 64


def parse_duration(text: str | float | int) -> float:
    """``"5"``/``"5s"`` -> 5.0, ``"5m"`` -> 300.0, ``"2h"``, ``"1d"``, ``"250ms"``; numbers pass."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not text >= 0 or text == float("inf"):
            raise ValueError(f"invalid duration {text!r}: must be a finite number >= 0")
        return float(text)
    match = _TOKEN.match(str(text).strip().lower())
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
    return f"{round(seconds, 3)}s"


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


def parse_exponential(text: str) -> tuple[float, float] | None:
    """``(first, cap)`` from ``"1s..60s"`` or ``"exponential"``; None for a list."""
    text = text.strip().lower()
    if text in ("exponential", "exp", "default"):
        return DEFAULT_INITIAL, DEFAULT_MAXIMUM
    if ".." not in text:
        return None
    first, _, cap = text.partition("..")
    initial, maximum = parse_duration(first), parse_duration(cap)
    if not 0 < initial <= maximum:
        raise ValueError(f"invalid exponential schedule {text!r}: need 0 < first <= cap")
    return initial, maximum


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after a retryable failure: wait ``delay`` s, or give up (``why``)."""

    delay: float | None
    why: str = ""


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """An immutable, setting-friendly retry policy (see the module docstring).

    ``delays`` None means exponential from ``initial`` doubling to ``maximum``.
    ``jitter`` is the relative spread (0.2 = +-20%); a zero delay stays zero.
    """

    delays: tuple[float, ...] | None = None
    initial: float = DEFAULT_INITIAL
    maximum: float = DEFAULT_MAXIMUM
    jitter: float = DEFAULT_JITTER
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER
    max_elapsed: float = DEFAULT_MAX_ELAPSED
    _rng: random.Random = field(
        default_factory=random.Random, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.delays is not None:
            if not self.delays:
                raise ValueError("a retry schedule needs at least one delay")
            if any(not d >= 0 for d in self.delays):
                raise ValueError("retry delays must be >= 0")
        elif not 0 < self.initial <= self.maximum:
            raise ValueError("exponential schedule: need 0 < initial <= maximum")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if not self.max_retry_after >= 0:
            raise ValueError("max_retry_after must be >= 0")
        if not self.max_elapsed >= 0:
            raise ValueError("max_elapsed must be >= 0")

    @classmethod
    def parse(
        cls,
        text: str | Iterable[float | int | str],
        *,
        jitter: float = DEFAULT_JITTER,
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        max_elapsed: float = DEFAULT_MAX_ELAPSED,
        rng: random.Random | None = None,
    ) -> RetrySchedule:
        """From ``"1s..60s"``/``"exponential"`` or a list like ``"0,5s,5m"``."""
        common = {
            "jitter": jitter,
            "max_retry_after": max_retry_after,
            "max_elapsed": max_elapsed,
            "_rng": rng or random.Random(),
        }
        exponential = parse_exponential(text) if isinstance(text, str) else None
        if exponential is not None:
            return cls(None, *exponential, **common)  # type: ignore[arg-type]
        return cls(parse_schedule(text), **common)  # type: ignore[arg-type]

    def __str__(self) -> str:
        if self.delays is None:
            return f"{format_duration(self.initial)}..{format_duration(self.maximum)}"
        return ",".join(format_duration(d) for d in self.delays)

    @property
    def exponential(self) -> bool:
        return self.delays is None

    @property
    def max_attempts(self) -> int | None:
        """Attempts in all, the first one included (None: bounded by time only)."""
        return None if self.delays is None else len(self.delays)

    def exhausted(self, failures: int) -> bool:
        """True when no attempt may follow the ``failures``-th failure."""
        return self.delays is not None and failures >= len(self.delays)

    def base_delay(self, failures: int) -> float | None:
        """The un-jittered wait after the ``failures``-th failure (None = give up)."""
        if failures < 0:
            raise ValueError("the failure count must be >= 0")
        if self.delays is None:
            if failures == 0:
                return 0.0
            return min(self.initial * 2.0 ** min(failures - 1, _MAX_DOUBLINGS), self.maximum)
        if failures >= len(self.delays):
            return None
        return self.delays[failures]

    @staticmethod
    def throttled(retry_after: float | None) -> bool:
        """Whether an answer's ``Retry-After`` sets the wait (and spares the schedule)."""
        return retry_after is not None and retry_after > 0

    def next_delay(self, failures: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after the ``failures``-th counted failure, or None when
        the schedule is exhausted. A ``Retry-After`` > 0 is the wait itself, capped
        at ``max_retry_after`` (no jitter, never exhausted). Otherwise the
        scheduled delay gets +-``jitter`` (0 stays 0; never above an exponential cap).
        """
        if self.throttled(retry_after):
            return min(float(retry_after), self.max_retry_after)  # type: ignore[arg-type]
        base = self.base_delay(failures)
        if base is None:
            return None
        delay = base
        if base > 0 and self.jitter > 0:
            delay = base * self._rng.uniform(1 - self.jitter, 1 + self.jitter)
        if self.delays is None:
            delay = min(delay, self.maximum)
        return max(0.0, delay)

    def decide(
        self, failures: int, failing_for: float, retry_after: float | None = None
    ) -> Decision:
        """Retry or give up after a retryable failure: ``failures`` counted on the
        schedule (throttled answers are not counted), ``failing_for`` seconds
        since the first failure after the last success."""
        if failing_for >= self.max_elapsed:
            return Decision(
                None,
                f"failing without a success for {format_duration(round(failing_for, 3))},"
                f" the limit STREAMSINK_RETRY_MAX_ELAPSED={format_duration(self.max_elapsed)}",
            )
        delay = self.next_delay(failures, retry_after)
        if delay is None:
            return Decision(
                None,
                f"retries exhausted after {failures} attempts (STREAMSINK_RETRY_SCHEDULE={self})",
            )
        return Decision(min(delay, self.max_elapsed - failing_for))


DEFAULT_RETRY_SCHEDULE = RetrySchedule()


def next_delay(
    failures: int,
    retry_after: float | None = None,
    schedule: RetrySchedule = DEFAULT_RETRY_SCHEDULE,
) -> float | None:
    """``schedule.next_delay(...)`` with the default (exponential) schedule."""
    return schedule.next_delay(failures, retry_after)
