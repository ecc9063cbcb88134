"""Resource identifiers: generated ids (``strm_``/``sink_`` + random base62) and
user-chosen uids / event-type names (Svix's ``^[a-zA-Z0-9\\-_.]+$``, 1..256).

A path segment that starts with a resource prefix is an id, anything else is a
uid; uids may therefore not start with a prefix.
"""

from __future__ import annotations

import re
import secrets

STREAM_PREFIX = "strm_"
SINK_PREFIX = "sink_"
PREFIXES = (STREAM_PREFIX, SINK_PREFIX)

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LEN = 22  # ~131 bits

UID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
UID_MAX_LEN = 256
NAME_PATTERN = UID_PATTERN  # event-type names share the uid alphabet
NAME_MAX_LEN = 256

_UID_RE = re.compile(UID_PATTERN)
_ID_RE = re.compile(r"^(strm|sink)_[0-9A-Za-z]{1,250}$")

# Path segments that a stream uid would shadow (``GET /stream/event-type`` lists event types).
RESERVED_STREAM_UIDS = frozenset({"event-type", "transformations"})


def new_id(prefix: str) -> str:
    """A fresh random id, e.g. ``strm_3kT9...`` (prefix + 22 base62 chars)."""
    return prefix + "".join(secrets.choice(BASE62) for _ in range(RANDOM_LEN))


def new_stream_id() -> str:
    return new_id(STREAM_PREFIX)


def new_sink_id() -> str:
    return new_id(SINK_PREFIX)


def is_id(value: str, prefix: str) -> bool:
    """True when ``value`` is shaped like an id of the given prefix."""
    return value.startswith(prefix) and _ID_RE.match(value) is not None


def validate_uid(value: str) -> str:
    """Return ``value`` if it is a valid uid, else raise ``ValueError`` (for pydantic)."""
    if not 1 <= len(value) <= UID_MAX_LEN:
        raise ValueError(f"uid must be 1..{UID_MAX_LEN} characters")
    if not _UID_RE.match(value):
        raise ValueError(f"uid must match {UID_PATTERN}")
    for prefix in PREFIXES:
        if value.startswith(prefix):
            raise ValueError(f"uid must not start with the reserved id prefix {prefix!r}")
    return value


def validate_stream_uid(value: str) -> str:
    value = validate_uid(value)
    if value in RESERVED_STREAM_UIDS:
        raise ValueError(f"uid {value!r} is reserved (it names an API path)")
    return value


def validate_name(value: str) -> str:
    """Event-type names: the uid alphabet, 1..256 characters, no prefix rule."""
    if not 1 <= len(value) <= NAME_MAX_LEN:
        raise ValueError(f"name must be 1..{NAME_MAX_LEN} characters")
    if not _UID_RE.match(value):
        raise ValueError(f"name must match {NAME_PATTERN}")
    return value
