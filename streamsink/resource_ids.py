"""Resource identifiers: generated ids (``strm_``/``sink_`` + random base62),
user-chosen uids and event-type names.

New uids follow Svix's rule: 1..60 characters of ``[a-zA-Z0-9_-]``, a stream uid
not starting with ``strm_``, a sink uid not with ``sink_``. A path segment that
starts with the resource's prefix is an id, anything else is a uid. Path
segments accept the wider ``UID_PATTERN`` (1..256, dots too), so uids stored
under an older rule stay reachable. Event-type names: Svix's
``^[a-zA-Z0-9\\-_.]+$``, 1..256, except ``.`` and ``..`` (a URL path cannot
carry them as a segment).
"""

from __future__ import annotations

import re
import secrets

STREAM_PREFIX = "strm_"
SINK_PREFIX = "sink_"

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LEN = 22  # ~131 bits

#: What a path segment naming a stream or sink (an id or a uid) may be.
UID_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
UID_MAX_LEN = 256
#: Svix's rule for a new uid (the id prefix is checked apart).
NEW_UID_PATTERN = r"^[a-zA-Z0-9_-]+$"
NEW_UID_MAX_LEN = 60
NAME_PATTERN = UID_PATTERN  # event-type names: the path alphabet
NAME_MAX_LEN = 256
#: Names a URL path cannot carry as a segment (clients resolve them away).
DOT_SEGMENTS = frozenset({".", ".."})

_NEW_UID_RE = re.compile(NEW_UID_PATTERN)
_NAME_RE = re.compile(NAME_PATTERN)
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
    return value.startswith(prefix) and _ID_RE.fullmatch(value) is not None


def _check_new_uid(value: str, prefix: str) -> str:
    if not 1 <= len(value) <= NEW_UID_MAX_LEN:
        raise ValueError(f"uid must be 1..{NEW_UID_MAX_LEN} characters")
    if not _NEW_UID_RE.fullmatch(value):
        raise ValueError(f"uid must match {NEW_UID_PATTERN}")
    if value.startswith(prefix):
        raise ValueError(f"uid must not start with the id prefix {prefix!r}")
    return value


def validate_uid(value: str) -> str:
    """Return ``value`` if it is a valid new sink uid, else raise ``ValueError``."""
    return _check_new_uid(value, SINK_PREFIX)


def validate_stream_uid(value: str) -> str:
    """Return ``value`` if it is a valid new stream uid, else raise ``ValueError``."""
    value = _check_new_uid(value, STREAM_PREFIX)
    if value in RESERVED_STREAM_UIDS:
        raise ValueError(f"uid {value!r} is reserved (it names an API path)")
    return value


def validate_name(value: str) -> str:
    """Event-type names: 1..256 characters of ``NAME_PATTERN``, not ``.``/``..``."""
    if not 1 <= len(value) <= NAME_MAX_LEN:
        raise ValueError(f"name must be 1..{NAME_MAX_LEN} characters")
    if not _NAME_RE.fullmatch(value):
        raise ValueError(f"name must match {NAME_PATTERN}")
    if value in DOT_SEGMENTS:
        raise ValueError(f"name {value!r} is not allowed (a URL path cannot carry it)")
    return value
