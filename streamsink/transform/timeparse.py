"""Handler times -> integer Unix nanoseconds, exactly.

Accepted (anything else is an error naming the value):

- ISO 8601 / RFC 3339 strings: ``YYYY-MM-DD``, optionally followed by ``T`` (or
  ``t`` or a space) and ``hh:mm``, ``hh:mm:ss`` or ``hh:mm:ss.fraction`` (``.``
  or ``,``), optionally followed by ``Z`` or an offset ``±hh:mm`` / ``±hhmm`` /
  ``±hh``. No offset means UTC. A date alone means midnight UTC. Fraction
  digits are kept exactly up to 9 (nanoseconds); further digits are truncated.
  No float and no ``datetime`` is involved, so ``.123456789`` stays exact.
- JSON numbers: Unix epoch **milliseconds** (what ``Date.now()`` and
  ``Date.getTime()`` give), fractional part rounded to the nanosecond.
- A JS ``Date`` object needs nothing: ``JSON.stringify`` makes it an ISO string.
- NaN, Infinity and an invalid ``Date`` are errors (JSON would turn them into
  null, read as "now"): caught inside V8 (``prelude.js``) and here.

The result must lie between 1970-01-01 and 2262-04-11 (unsigned 64-bit
nanoseconds as OTLP carries them, bounded by signed int64 for safety).
"""

from __future__ import annotations

import math
import re

from streamsink.errors import TimeParseError

_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII,
)
_MAX_NS = 2**63 - 1
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _is_leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


_minute_cache: dict[str, int] = {}  # "YYYY-MM-DDThh:mm" -> Unix seconds, validated
_MINUTE_CACHE_MAX = 4096


_SECONDS = {f"{n:02d}": n for n in range(60)}
_ZULU = ("Z", "z", "")
#: ".fZ", ".ffZ", ".fffZ" -> ns (JavaScript's toISOString() writes ".fffZ"); 1,110 keys
_SHORT_FRACTIONS = {
    f".{digits}Z": int(digits.ljust(9, "0"))
    for width in (1, 2, 3)
    for digits in (f"{n:0{width}d}" for n in range(10**width))
}


def parse_iso8601_ns(text: str) -> int:
    """Parse an ISO 8601 string to Unix nanoseconds (see module doc).

    Fast path: ``...hh:mm:ss[.f][Z]`` whose date-hour-minute prefix was seen
    before (batches share minutes); anything else takes the full parser.
    """
    base = _minute_cache.get(text[:16])
    if base is not None and text[16:17] == ":":
        sec = _SECONDS.get(text[17:19])
        if sec is not None:
            tail = text[19:]
            nanos = _SHORT_FRACTIONS.get(tail)
            if nanos is not None:
                ns = (base + sec) * 1_000_000_000 + nanos
            elif tail in _ZULU:
                ns = (base + sec) * 1_000_000_000
            elif (
                tail[0] in ".," and tail[-1] in "Zz" and (f := tail[1:-1]).isdigit() and f.isascii()
            ):
                ns = (base + sec) * 1_000_000_000 + int((f + "000000000")[:9])
            else:
                return _parse_full(text)
            if 0 <= ns <= _MAX_NS:
                return ns
    return _parse_full(text)


def _parse_full(text: str) -> int:
    m = _ISO.fullmatch(text)
    if m is None:
        raise TimeParseError(f"not an ISO 8601 time: {show_value(text)}")
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour = int(m[4]) if m[4] else 0
    minute = int(m[5]) if m[5] else 0
    second = int(m[6]) if m[6] else 0
    if not 1 <= month <= 12:
        raise TimeParseError(f"month out of range in {show_value(text)}")
    dim = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= dim:
        raise TimeParseError(f"day out of range in {show_value(text)}")
    if hour > 23 or minute > 59 or second > 59:
        raise TimeParseError(f"time of day out of range in {show_value(text)}")
    frac = m[7]
    nanos = int((frac + "000000000")[:9]) if frac else 0
    offset = 0
    tz = m[8]
    if tz and tz not in ("Z", "z"):
        digits = tz[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:] or 0)
        if oh > 23 or om > 59:
            raise TimeParseError(f"UTC offset out of range in {show_value(text)}")
        offset = (oh * 3600 + om * 60) * (-1 if tz[0] == "-" else 1)
    minute_secs = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60
    if m[4] and not offset:
        if len(_minute_cache) >= _MINUTE_CACHE_MAX:
            _minute_cache.clear()
        _minute_cache[text[:16]] = minute_secs
    return _checked((minute_secs + second - offset) * 1_000_000_000 + nanos, text)


def parse_time_ns(value: object) -> int:
    """Parse a handler time (ISO 8601 string or epoch milliseconds) to Unix ns."""
    if isinstance(value, str):
        return parse_iso8601_ns(value)
    if isinstance(value, bool):
        raise TimeParseError(f"not a time: {value!r}")
    if isinstance(value, int):
        return _checked(value * 1_000_000, value)
    if isinstance(value, float):
        if not math.isfinite(value):  # JSON has none; JavaScript's become null in V8
            raise TimeParseError(f"not a time: {value!r}")
        whole = math.floor(value)  # split first: keeps the sub-ms digits a double holds
        return _checked(whole * 1_000_000 + round((value - whole) * 1_000_000), value)
    raise TimeParseError(f"not an ISO 8601 time: {show_value(value)}")


def _checked(ns: int, original: object) -> int:
    if ns < 0 or ns > _MAX_NS:
        raise TimeParseError(f"outside 1970-01-01..2262-04-11: {show_value(original)}")
    return ns


def show_value(value: object) -> str:
    """A JSON rendering of ``value`` for error messages, cut at 80 characters."""
    import orjson

    try:
        shown = orjson.dumps(value).decode()
    except TypeError:
        shown = repr(value)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def format_ns(ns: int) -> str:
    """Unix nanoseconds -> ``YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ`` (for messages and tests)."""
    secs, nanos = divmod(ns, 1_000_000_000)
    days, rem = divmod(secs, 86400)
    # civil_from_days (H. Hinnant)
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    mo = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400 + (mo <= 2)
    hh, rem = divmod(rem, 3600)
    mm, ss = divmod(rem, 60)
    return f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mm:02d}:{ss:02d}.{nanos:09d}Z"
