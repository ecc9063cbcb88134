"""``Content-Encoding`` of API request bodies: gzip is decoded, anything else is a 415.

Used by ``api.middleware.body`` (which reads each body once), so both lanes of
the events POST, the idempotency check and every route see the decoded body.
OTLP/HTTP and other clients compress with gzip (``x-gzip`` is its alias).
Decoding stops at ``STREAMSINK_MAX_BODY_BYTES`` of output (413), so a small
compressed body cannot expand past the limit the plain body has.
"""

from __future__ import annotations

import zlib

from starlette.types import Scope

from streamsink.errors import BodyTooLarge

SUPPORTED = ("gzip", "identity")
_GZIP = frozenset({"gzip", "x-gzip"})
_IDENTITY = frozenset({"", "identity"})


def gunzip(data: bytes, limit: int) -> bytes:
    """The gzip ``data`` decoded (every member), at most ``limit`` bytes of it.

    ``BodyTooLarge`` past ``limit``; ``zlib.error`` when ``data`` is not gzip or
    is truncated."""
    out = bytearray()
    while True:
        decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        out += decoder.decompress(data, limit + 1 - len(out))
        if len(out) > limit or decoder.unconsumed_tail:
            raise BodyTooLarge
        if not decoder.eof:
            raise zlib.error("the gzip data is truncated")
        data = decoder.unused_data
        if not data:
            return bytes(out)


def is_gzip(coding: str) -> bool:
    return coding in _GZIP


def codings_of(scope: Scope) -> list[str]:
    """The codings applied to the body (identity left out), in the order they
    were applied."""
    found: list[str] = []
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-encoding":
            for part in value.decode("latin-1").split(","):
                coding = part.strip().lower()
                if coding not in _IDENTITY:
                    found.append(coding)
    return found
