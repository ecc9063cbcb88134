"""deliver_spans: 413 splitting, proactive size splitting, stop at first failure."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from streamsink.otlp.client import PROTOBUF, DeliveryClient, Outcome, deliver_spans
from tests.helpers.otlp_requests import make_request, make_span, to_json, to_protobuf
from tests.helpers.receiver_server import Answer, ReceiverServer


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
