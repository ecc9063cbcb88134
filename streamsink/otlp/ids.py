"""Trace and span IDs: derived from keys (stable forever), explicit, or random.

Derivation rule (docs/architecture.md, IDs; never change it, users' traces depend on it)::

    digest   = SHA-256( UTF-8(stream_id) || 0x00 || UTF-8(key) )
    traceId  = digest[0:16]        spanId / parentSpanId = digest[0:8]

The stream id is the stream's ``strm_...`` id (not its uid). A key maps to the
same ID across batches, workers and restarts. Trace and span IDs of the same
key share their first 8 bytes; they live in different fields, so this is fine.
In the (2^-64 / 2^-128) case the slice is all zero, re-derive with a counter
``n = 1, 2, ...`` until it is not::

    digest_n = SHA-256( UTF-8(stream_id) || 0x00 || UTF-8(key) || 0x00 || ASCII(n) )

No key: a random non-zero ID.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable

import orjson

from streamsink.otlp.spans import Span

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
_ZERO = {TRACE_ID_BYTES: bytes(TRACE_ID_BYTES), SPAN_ID_BYTES: bytes(SPAN_ID_BYTES)}


class IdDeriver:
    """Key -> ID for one stream. The stream-id prefix is hashed once."""

    __slots__ = ("_base", "_trace", "_span")

    def __init__(self, stream_id: str) -> None:
        self._base = hashlib.sha256(stream_id.encode("utf-8") + b"\x00")
        self._trace: dict[str, bytes] = {}
        self._span: dict[str, bytes] = {}

    def _derive(self, key: str, n: int) -> bytes:
        h = self._base.copy()
        h.update(key.encode("utf-8"))
        out = h.digest()[:n]
        counter = 0
        while out == _ZERO[n]:
            counter += 1
            h = self._base.copy()
            h.update(key.encode("utf-8") + b"\x00" + str(counter).encode("ascii"))
            out = h.digest()[:n]
        return out

    def trace_id(self, key: str) -> bytes:
        tid = self._trace.get(key)
        if tid is None:
            tid = self._trace[key] = self._derive(key, TRACE_ID_BYTES)
        return tid

    def span_id(self, key: str) -> bytes:
        sid = self._span.get(key)
        if sid is None:
            sid = self._span[key] = self._derive(key, SPAN_ID_BYTES)
        return sid


def derive_trace_id(stream_id: str, key: str) -> str:
    """The hex trace ID a ``traceIdKey`` yields in a stream."""
    return IdDeriver(stream_id).trace_id(key).hex()


def derive_span_id(stream_id: str, key: str) -> str:
    """The hex span ID a ``spanIdKey`` / ``parentSpanIdKey`` yields in a stream."""
    return IdDeriver(stream_id).span_id(key).hex()


def random_id(n: int) -> bytes:
    """A random non-zero ID of ``n`` bytes (``random`` is re-seeded after fork)."""
    while True:
        out = random.getrandbits(n * 8).to_bytes(n, "big")
        if out != _ZERO[n]:
            return out


def parse_hex_id(value: object, n: int) -> bytes:
    """``n``-byte ID from hex text; ``ValueError`` saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"expected {2 * n} hex digits as a string")
    if len(value) != 2 * n:
        raise ValueError(f"expected {2 * n} hex digits, got {len(value)} characters")
    try:
        out = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"not hexadecimal: {orjson.dumps(value).decode()}") from None
    if out == _ZERO[n]:
        raise ValueError("an all-zero ID is invalid")
    return out


TraceLookup = Callable[[str], "str | None"]
"""``trace_lookup(parent_span_id_hex) -> trace_id_hex | None`` (e.g. backed by Redis)."""


def assign_traces(spans: list[Span], trace_lookup: TraceLookup | None = None) -> None:
    """Give every span whose ``trace_id`` is ``b""`` a trace, in place.

    A span with a parent in the batch (matched by span ID) inherits the
    parent's trace, transitively and independently of order. A chain whose
    top parent is not in the batch asks ``trace_lookup`` (once per distinct
    parent ID); otherwise, and for cycles and parentless spans, the chain gets
    one random trace.
    """
    by_id: dict[bytes, Span] = {}
    for s in spans:
        by_id.setdefault(s.span_id, s)
    looked_up: dict[bytes, bytes | None] = {}
    for s in spans:
        if s.trace_id:
            continue
        chain: list[Span] = []
        seen: set[int] = set()
        cur: Span = s
        trace = b""
        while True:
            if cur.trace_id:
                trace = cur.trace_id
                break
            chain.append(cur)
            seen.add(id(cur))
            parent = by_id.get(cur.parent_span_id) if cur.parent_span_id else None
            if parent is None or id(parent) in seen:
                if parent is None and cur.parent_span_id and trace_lookup is not None:
                    trace = _lookup(cur.parent_span_id, trace_lookup, looked_up) or b""
                break
            cur = parent
        if not trace:
            trace = random_id(TRACE_ID_BYTES)
        for c in chain:
            c.trace_id = trace


def _lookup(parent: bytes, fn: TraceLookup, cache: dict[bytes, bytes | None]) -> bytes | None:
    if parent not in cache:
        found = fn(parent.hex())
        try:
            cache[parent] = parse_hex_id(found, TRACE_ID_BYTES) if found else None
        except ValueError:
            cache[parent] = None
    return cache[parent]
