"""deliver_spans and export (the one splitter): 413 splitting, proactive size
splitting, the encoding switch on 415, stop at first failure."""

from __future__ import annotations

import os
from collections.abc import Sequence

import orjson
import pytest

from streamsink.otlp.spans import Span, SpanBatch
from streamsink.otlp.split import CONTENT_TYPES, BodyEncoder, Encoding, encode_bodies
from streamsink.sinkhttp.client import PROTOBUF, DeliveryClient, Outcome
from streamsink.sinkhttp.export import Prerendered, deliver_spans, export
from tests.helpers.otlp_requests import make_request, make_span, to_json, to_protobuf
from tests.helpers.receiver_server import Answer, ReceiverServer, Recorded


def encode_json(spans: Sequence[int]) -> bytes:
    return to_json(
        make_request([make_span(f"span-{n}", sid=n, attributes={"pad": "x" * 200}) for n in spans])
    )


def received_names(sink: ReceiverServer) -> list[str]:
    return [s["name"] for s in sink.spans()]


def test_413_split_delivers_every_span_exactly_once_in_order(
    client: DeliveryClient,
) -> None:
    spans = list(range(37))
    one = len(encode_json([0]))
    with ReceiverServer(max_body=one * 5) as sink:
        result = deliver_spans(client, sink.traces_url, spans, encode_json)
        ok = [r for r in sink.requests if len(r.body) <= one * 5]
        assert result.ok, result.failure
        assert result.delivered == 37
        assert any(a.outcome is Outcome.TOO_LARGE for a in result.attempts)
        assert len(result.attempts) == len(sink.requests)
        # only accepted requests count: each span arrives exactly once, in order
        names = [s["name"] for r in ok for s in r.spans()]
        assert names == [f"span-{n}" for n in spans]


def test_single_span_still_too_large_is_permanent(client: DeliveryClient) -> None:
    with ReceiverServer(max_body=100) as sink:
        result = deliver_spans(client, sink.traces_url, [1, 2, 3], encode_json)
    assert result.outcome is Outcome.PERMANENT
    assert result.delivered == 0
    assert result.failure is not None and result.failure.status_code == 413
    assert "a single span" in result.failure.reason and "too large" in result.failure.reason
    assert result.attempts[-1] is result.failure
    assert len(result.attempts) == 2  # [1,2,3] -> [1] | [2,3]: [1] fails, stop


def test_proactive_split_by_max_body_bytes(client: DeliveryClient) -> None:
    one = len(encode_json([0]))
    with ReceiverServer() as sink:
        result = deliver_spans(
            client, sink.traces_url, list(range(20)), encode_json, max_body_bytes=one * 3
        )
        assert result.ok and result.delivered == 20
        assert all(a.outcome is Outcome.SUCCESS for a in result.attempts)
        assert all(len(r.body) <= one * 3 for r in sink.requests)
        assert received_names(sink) == [f"span-{n}" for n in range(20)]


def test_stops_at_first_failure_with_delivered_prefix(client: DeliveryClient) -> None:
    one = len(encode_json([0]))
    with ReceiverServer([200, Answer(503, headers={"Retry-After": "9"})]) as sink:
        result = deliver_spans(
            client, sink.traces_url, list(range(8)), encode_json, max_body_bytes=one * 2
        )
        assert result.outcome is Outcome.RETRYABLE
        assert result.delivered == 2
        assert result.failure is not None and result.failure.retry_after == 9
        assert len(sink.requests) == 2


def test_partial_success_is_summed_and_protobuf_gzip(client: DeliveryClient) -> None:
    answer = Answer(
        200,
        orjson.dumps({"partialSuccess": {"rejectedSpans": "2"}}),
        content_type="application/json",
    )

    def encode_pb(spans: Sequence[int]) -> bytes:
        return to_protobuf(make_request([make_span(f"s{n}", sid=n) for n in spans]))

    with ReceiverServer([answer, answer]) as sink:
        result = deliver_spans(
            client,
            sink.traces_url,
            list(range(4)),
            encode_pb,
            content_type=PROTOBUF,
            gzip=True,
            max_body_bytes=len(encode_pb([0, 1])),
            headers={"X-Key": "k"},
        )
        assert result.ok and result.delivered == 4 and result.rejected_spans == 4
        assert all(r.headers["content-encoding"] == "gzip" for r in sink.requests)
        assert all(r.headers["x-key"] == "k" for r in sink.requests)
        assert received_names(sink) == ["s0", "s1", "s2", "s3"]


def test_no_spans_sends_nothing(client: DeliveryClient) -> None:
    with ReceiverServer() as sink:
        result = deliver_spans(client, sink.traces_url, [], encode_json)
        assert result.ok and result.delivered == 0 and sink.requests == []


# --- export: the one splitter over BodyEncoder (every encoding and compression) ---


def _batch(n: int, pad: int = 120) -> SpanBatch:
    spans = [
        Span(
            trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
            span_id=(i + 1).to_bytes(8, "big"),
            parent_span_id=b"",
            name=f"span-{i}",
            kind=1,
            start_time_unix_nano=1_700_000_000_000_000_000 + i,
            end_time_unix_nano=1_700_000_000_000_000_500 + i,
            attributes={"seq": i, "pad": os.urandom(pad).hex()},
        )
        for i in range(n)
    ]
    return SpanBatch("svc", spans=spans)


def _names(requests: Sequence[Recorded]) -> list[str]:
    return [s["name"] for r in requests for s in r.spans()]


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
@pytest.mark.parametrize("gz", [False, True])
def test_413_halves_keep_encoding_and_compression(
    client: DeliveryClient, encoding: Encoding, gz: bool
) -> None:
    batch = _batch(12)
    encoder = BodyEncoder(batch, encoding, gz)
    one = len(encoder.render(range(0, 2)).data)
    with ReceiverServer(max_body=one) as sink:
        result = export(client, sink.traces_url, encoder)
        assert result.ok, result.failure
        assert result.delivered == 12 and result.encoding == encoding
        assert any(a.outcome is Outcome.TOO_LARGE for a in result.attempts)
        for r in sink.requests:
            assert r.headers["content-type"] == CONTENT_TYPES[encoding]
            assert r.headers.get("content-encoding") == ("gzip" if gz else None)
        ok = [r for r in sink.requests if len(r.body) <= one]
        assert _names(ok) == [f"span-{i}" for i in range(12)]


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_byte_limit_plan_then_413_for_prerendered_bodies(
    client: DeliveryClient, encoding: Encoding
) -> None:
    batch = _batch(10)
    limit = len(BodyEncoder(batch, encoding, True).render(range(0, 4)).data) + 200
    bodies = encode_bodies(batch, encoding=encoding, gzip_body=True, max_bytes=limit * 3)
    assert len(bodies) >= 2
    renderer = Prerendered(bodies, encoding, lambda: BodyEncoder(batch, encoding, True))
    with ReceiverServer(max_body=limit) as sink:
        result = export(client, sink.traces_url, renderer, max_bytes=limit * 3)
        assert result.ok and result.delivered == 10
        ok = [r for r in sink.requests if len(r.body) <= limit]
        assert _names(ok) == [f"span-{i}" for i in range(10)]
        assert {r.headers["content-encoding"] for r in sink.requests} == {"gzip"}
        assert {r.headers["content-type"] for r in sink.requests} == {CONTENT_TYPES[encoding]}


def test_415_switches_the_rest_of_the_batch_once(client: DeliveryClient) -> None:
    batch = _batch(6)
    json_bodies = encode_bodies(batch, encoding="json", max_bytes=len(encode_json([0])) * 4)
    assert len(json_bodies) >= 2
    refused = Answer(415, "no JSON here", content_type="text/plain")
    # the first body is taken as JSON, the second refused: the rest goes as protobuf
    with ReceiverServer([200, refused]) as sink:
        renderer = Prerendered(json_bodies, "json", lambda: BodyEncoder(batch, "json"))
        result = export(
            client,
            sink.traces_url,
            renderer,
            fallback=lambda: BodyEncoder(batch, "protobuf"),
        )
        assert result.ok and result.delivered == 6 and result.encoding == "protobuf"
        assert result.switch is not None
        assert (result.switch.from_encoding, result.switch.to_encoding) == ("json", "protobuf")
        assert result.switch.answer.status_code == 415
        types = [r.headers["content-type"] for r in sink.requests]
        assert types[:2] == ["application/json"] * 2
        assert set(types[2:]) == {PROTOBUF}
        accepted = [sink.requests[0], *sink.requests[2:]]
        assert _names(accepted) == [f"span-{i}" for i in range(6)]


def test_415_without_fallback_or_twice_is_permanent(client: DeliveryClient) -> None:
    batch = _batch(2)
    with ReceiverServer(default=415) as sink:
        alone = export(client, sink.traces_url, BodyEncoder(batch, "json"))
        assert alone.outcome is Outcome.PERMANENT and alone.switch is None
        assert alone.failure is not None and alone.failure.status_code == 415
        both = export(
            client,
            sink.traces_url,
            BodyEncoder(batch, "json"),
            fallback=lambda: BodyEncoder(batch, "protobuf", True),
        )
        assert both.outcome is Outcome.PERMANENT and both.switch is not None
        assert len(both.attempts) == 2 and both.delivered == 0
        assert sink.requests[-1].headers["content-encoding"] == "gzip"
