"""What a sink's URL and headers may be (pure rules shared by the wire models,
the sink store and delivery): HTTP token names, no CR/LF/NUL, no header the
delivery client owns, names unique but for case, credentials redacted, and the
destination policy on the URL at save time."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from streamsink.sinkhttp.netguard import DestinationPolicy, DestinationRefused

MAX_URL_LEN = 65536
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_BAD_VALUE_RE = re.compile(r"[\r\n\x00]")
#: Ceilings of the wire models; the configurable limits (``Settings.max_*``)
#: are checked by the API and are at most these.
MAX_HEADERS = 1024
MAX_CODE_LEN = 1024 * 1024
MAX_HEADER_VALUE_LEN = 8192
#: Headers the delivery client owns; a user value would break the request.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    }
)
#: Header names whose values are credentials (redacted in answers, never logged):
#: vendors' own names, then any name containing one of the parts.
_SENSITIVE_EXACT = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-honeycomb-team"}
)
# fmt: off
_SENSITIVE_PARTS = (
    "token", "secret", "password", "passwd", "key", "dsn", "auth", "credential",
    "session", "cookie", "signature", "license", "private", "jwt", "bearer",
)
# fmt: on
REDACTED = "************"


def is_sensitive_header(name: str) -> bool:
    low = name.lower()
    return low in _SENSITIVE_EXACT or any(part in low for part in _SENSITIVE_PARTS)


def check_header(name: str, value: str | None) -> None:
    """Raise ``ValueError`` naming the header when its name or value is not sendable."""
    if not _TOKEN_RE.match(name) or len(name) > 256:
        raise ValueError(f"header name {name!r} is not a valid HTTP token (RFC 7230)")
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"header {name!r} is set by the delivery client and cannot be overridden")
    if value is not None:
        if _BAD_VALUE_RE.search(value):
            raise ValueError(f"header {name!r}: value must not contain CR, LF or NUL")
        if len(value) > MAX_HEADER_VALUE_LEN:
            raise ValueError(f"header {name!r}: value longer than {MAX_HEADER_VALUE_LEN}")


def check_header_names(headers: dict[str, Any]) -> None:
    """Each header is checked; too many, or names equal but for case (HTTP names
    are case-insensitive: only one would be sent), raise ``ValueError``."""
    if len(headers) > MAX_HEADERS:
        raise ValueError(
            f"{len(headers)} headers; at most {MAX_HEADERS}, and a sink at most"
            " STREAMSINK_MAX_HEADERS_PER_SINK"
        )
    seen: dict[str, str] = {}
    for name, value in headers.items():
        check_header(name, value)
        other = seen.setdefault(name.lower(), name)
        if other != name:
            raise ValueError(
                f"headers {other!r} and {name!r} differ only in case: HTTP header names"
                " are case-insensitive, give one of them"
            )


def check_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    if headers is not None:
        check_header_names(headers)
    return headers


def check_header_patch(headers: dict[str, str | None]) -> dict[str, str | None]:
    check_header_names(headers)
    return headers


def check_url(url: str) -> str:
    """The URL when a sink may have it; ``ValueError`` naming the URL and why."""
    if len(url) > MAX_URL_LEN:
        raise ValueError(f"url longer than {MAX_URL_LEN} characters")
    shown = repr(url if len(url) <= 200 else url[:200] + "...")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port
    except ValueError as exc:
        raise ValueError(f"invalid url {shown}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"url {shown} must be an absolute http:// or https:// URL")
    if any(c.isspace() for c in url):
        raise ValueError(f"url {shown} must not contain whitespace")
    try:
        DestinationPolicy().check_url(url)  # link-local / metadata: refused whatever the settings
    except DestinationRefused as exc:
        raise ValueError(f"url not allowed: {exc}") from None
    return url
