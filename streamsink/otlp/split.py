"""One validated batch -> one or more OTLP request bodies.

``encode_bodies`` encodes every span once, then packs spans greedily, in
order, into bodies whose (uncompressed) size stays within ``max_bytes``; a
single span bigger than the limit goes alone in its own body. The limit is
checked before gzip: the compressed body is then (practically) never larger.
On a 413 the caller can encode again with a smaller ``max_bytes``.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from streamsink.otlp.encode_json import CONTENT_TYPE_JSON, encode_span_json, json_frame
from streamsink.otlp.encode_proto import CONTENT_TYPE_PROTOBUF, ProtoFrame, encode_span_proto
from streamsink.otlp.spans import SpanBatch

Encoding = Literal["json", "protobuf"]
GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Body:
    """One HTTP request body ready to POST."""

    data: bytes
    content_type: str
    content_encoding: str | None  # "gzip" or None
    span_count: int

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": self.content_type}
        if self.content_encoding:
            h["Content-Encoding"] = self.content_encoding
        return h


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0) at a moderate level."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def pack(sizes: list[int], body_size: Callable[[int, int], int], max_bytes: int) -> list[range]:
    """Greedy, order-keeping grouping of pieces: ``body_size(total, count)`` is
    the body size of ``count`` pieces adding ``total`` bytes. Returns index ranges."""
    groups: list[range] = []
    start, total = 0, 0
    for i, size in enumerate(sizes):
        if i > start and body_size(total + size, i - start + 1) > max_bytes:
            groups.append(range(start, i))
            start, total = i, 0
        total += size
    if sizes:
        groups.append(range(start, len(sizes)))
    return groups


def encode_bodies(
    batch: SpanBatch,
    *,
    encoding: Encoding = "json",
    gzip_body: bool = False,
    max_bytes: int | None = None,
) -> list[Body]:
    """Encode ``batch`` as OTLP/HTTP bodies (JSON or protobuf, optionally gzip).

    A batch with no spans yields no body.
    """
    if not batch.spans:
        return []
    if encoding == "json":
        prefix, suffix = json_frame(batch)
        pieces = [encode_span_json(s) for s in batch.spans]
        fixed = len(prefix) + len(suffix)

        def size(total: int, count: int) -> int:
            return fixed + total + count - 1  # commas

        def render(chunk: list[bytes]) -> bytes:
            return prefix + b",".join(chunk) + suffix

        content_type = CONTENT_TYPE_JSON
        sizes = [len(p) for p in pieces]
    elif encoding == "protobuf":
        frame = ProtoFrame(batch)
        pieces = [encode_span_proto(s) for s in batch.spans]

        def size(total: int, count: int) -> int:
            return frame.body_size(total)

        render = frame.body
        content_type = CONTENT_TYPE_PROTOBUF
        sizes = [ProtoFrame.piece_size(len(p)) for p in pieces]
    else:
        raise ValueError(f"unknown OTLP encoding {encoding!r}")
    groups = [range(len(pieces))] if max_bytes is None else pack(sizes, size, max_bytes)
    bodies = []
    for g in groups:
        data = render(pieces[g.start : g.stop])
        if gzip_body:
            data = gzip_bytes(data)
        bodies.append(Body(data, content_type, "gzip" if gzip_body else None, len(g)))
    return bodies
