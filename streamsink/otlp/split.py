"""One validated batch -> one or more OTLP request bodies.

``BodyEncoder`` encodes every span of a batch once (JSON or protobuf) and
renders any run of them as one request body, gzip-compressed or not. Its
``plan`` packs spans greedily, in order, into runs whose (uncompressed) body
stays within ``max_bytes``; a single span bigger than the limit goes alone.
The limit is checked before gzip: the compressed body is then (practically)
never larger. On a 413 the sender renders each half of the refused run with
the same encoder, so halves keep the sink's encoding and compression.
``encode_bodies`` is the one-shot form.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from streamsink.otlp.encode_json import CONTENT_TYPE_JSON, encode_span_json, json_frame
from streamsink.otlp.encode_proto import CONTENT_TYPE_PROTOBUF, ProtoFrame, encode_span_proto
from streamsink.otlp.spans import SpanBatch

Encoding = Literal["json", "protobuf"]
ENCODINGS: tuple[Encoding, ...] = ("json", "protobuf")
CONTENT_TYPES: dict[str, str] = {"json": CONTENT_TYPE_JSON, "protobuf": CONTENT_TYPE_PROTOBUF}
#: The one gzip level of every request body streamsink compresses.
GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True)
class Body:
    """One HTTP request body ready to POST."""

    data: bytes
    content_type: str
    content_encoding: str | None  # "gzip" or None
    span_count: int
    raw_size: int = -1  # bytes before gzip (-1: same as ``data``)

    @property
    def size(self) -> int:
        """Bytes before compression: what the byte limit is checked against."""
        return len(self.data) if self.raw_size < 0 else self.raw_size

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": self.content_type}
        if self.content_encoding:
            h["Content-Encoding"] = self.content_encoding
        return h


def gzip_bytes(data: bytes) -> bytes:
    """Deterministic gzip (mtime 0) at ``GZIP_LEVEL``."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


def make_body(raw: bytes, content_type: str, gzip_body: bool, span_count: int) -> Body:
    """A body of ``raw`` (compressed when ``gzip_body``)."""
    if gzip_body:
        return Body(gzip_bytes(raw), content_type, "gzip", span_count, len(raw))
    return Body(raw, content_type, None, span_count)


def other_encoding(encoding: Encoding) -> Encoding:
    return "protobuf" if encoding == "json" else "json"


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


class BodyEncoder:
    """The spans of one batch, each encoded once, rendered by runs into bodies."""

    def __init__(self, batch: SpanBatch, encoding: Encoding = "json", gzip_body: bool = False):
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown OTLP encoding {encoding!r}")
        self.encoding: Encoding = encoding
        self.gzip_body = gzip_body
        self.content_type = CONTENT_TYPES[encoding]
        self.count = len(batch.spans)
        self._render: Callable[[list[bytes]], bytes]
        self._size: Callable[[int, int], int]
        if encoding == "json":
            prefix, suffix = json_frame(batch)
            self._pieces = [encode_span_json(s) for s in batch.spans]
            self._sizes = [len(p) for p in self._pieces]
            fixed = len(prefix) + len(suffix)
            self._size = lambda total, count: fixed + total + count - 1  # commas
            self._render = lambda chunk: prefix + b",".join(chunk) + suffix
        else:
            frame = ProtoFrame(batch)
            self._pieces = [encode_span_proto(s) for s in batch.spans]
            self._sizes = [ProtoFrame.piece_size(len(p)) for p in self._pieces]
            self._size = lambda total, count: frame.body_size(total)
            self._render = frame.body

    def plan(self, max_bytes: int | None, start: int = 0) -> list[range]:
        """Runs of spans ``start..`` whose bodies stay within ``max_bytes`` (None: one run)."""
        if start >= self.count:
            return []
        if max_bytes is None:
            return [range(start, self.count)]
        runs = pack(self._sizes[start:], self._size, max_bytes)
        return [range(r.start + start, r.stop + start) for r in runs]

    def render(self, run: range) -> Body:
        """The body of spans ``run`` (a non-empty range of span indices)."""
        raw = self._render(self._pieces[run.start : run.stop])
        return make_body(raw, self.content_type, self.gzip_body, len(run))

    def bodies(self, max_bytes: int | None = None) -> list[Body]:
        return [self.render(run) for run in self.plan(max_bytes)]


def runs_of(bodies: Sequence[Body]) -> list[range]:
    """The span index range of each body of a batch, in order."""
    runs, offset = [], 0
    for body in bodies:
        runs.append(range(offset, offset + body.span_count))
        offset += body.span_count
    return runs


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
    return BodyEncoder(batch, encoding, gzip_body).bodies(max_bytes)
