from __future__ import annotations

import hashlib

import pytest

from streamsink.otlp import ids
from streamsink.otlp.ids import (
    IdDeriver,
    assign_traces,
    derive_span_id,
    derive_trace_id,
    parse_hex_id,
    random_id,
)
from streamsink.otlp.spans import Span


def test_derivation_rule_and_worked_example() -> None:
    digest = hashlib.sha256(b"strm_2xJ9kQ\x00msg_1234").digest()
    assert derive_trace_id("strm_2xJ9kQ", "msg_1234") == digest[:16].hex()
    assert derive_span_id("strm_2xJ9kQ", "msg_1234") == digest[:8].hex()
    # Pinned forever: the README's worked example (changing these breaks users' traces).
    assert derive_trace_id("strm_2xJ9kQ", "msg_1234") == "85676b616c3406af2674eef89f1ab8a3"
    assert derive_span_id("strm_2xJ9kQ", "atmpt_9876") == "d3ac4defc6f35ea3"


def test_stable_across_instances_and_distinct_per_stream() -> None:
    a, b = IdDeriver("strm_a"), IdDeriver("strm_a")
    assert a.trace_id("k") == b.trace_id("k") and a.span_id("k") == b.span_id("k")
    assert IdDeriver("strm_b").trace_id("k") != a.trace_id("k")
    assert a.span_id("k") == a.trace_id("k")[:8]
    # the 0x00 separator keeps ("ab", "c") and ("a", "bc") apart
    assert IdDeriver("ab").span_id("c") != IdDeriver("a").span_id("bc")
    assert IdDeriver("s").span_id("ü") == hashlib.sha256("s\x00ü".encode()).digest()[:8]


def test_all_zero_result_is_rederived_with_counter(monkeypatch: pytest.MonkeyPatch) -> None:
    first = hashlib.sha256(b"s\x00k").digest()[:8]
    monkeypatch.setitem(ids._ZERO, 8, first)  # pretend the first derivation was all zero
    expected = hashlib.sha256(b"s\x00k\x001").digest()[:8]
    assert IdDeriver("s").span_id("k") == expected


def test_random_ids() -> None:
    seen = {random_id(8) for _ in range(1000)}
    assert len(seen) == 1000 and bytes(8) not in seen
    assert len(random_id(16)) == 16


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "expected 16 hex digits, got 3 characters"),
        ("zzzzzzzzzzzzzzzz", "not hexadecimal"),
        ("0000000000000000", "all-zero"),
        (12, "expected 16 hex digits as a string"),
    ],
)
def test_parse_hex_id_errors(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_hex_id(value, 8)


def test_parse_hex_id_accepts_upper_case() -> None:
    assert parse_hex_id("B7AD6B7169203331", 8).hex() == "b7ad6b7169203331"


def _span(span: str, parent: str = "", trace: bytes = b"") -> Span:
    d = IdDeriver("s")
    return Span(trace, d.span_id(span), d.span_id(parent) if parent else b"", span, 1, 0, 0)


def test_children_inherit_trace_transitively_in_any_order() -> None:
    root_trace = IdDeriver("s").trace_id("T")
    spans = [
        _span("c3", "c2"),
        _span("c2", "c1"),
        _span("c1", "root"),
        _span("root", "", root_trace),
    ]
    assign_traces(spans)
    assert {s.trace_id for s in spans} == {root_trace}


def test_own_trace_wins_and_orphans_get_random_traces() -> None:
    other = IdDeriver("s").trace_id("other")
    root = _span("root", "", IdDeriver("s").trace_id("T"))
    child = _span("child", "root", other)
    orphan1, orphan2 = _span("o1", "missing"), _span("o2")
    assign_traces([root, child, orphan1, orphan2])
    assert child.trace_id == other
    assert orphan1.trace_id and orphan2.trace_id and orphan1.trace_id != orphan2.trace_id


def test_parentless_chain_shares_one_trace_and_cycles_terminate() -> None:
    a, b = _span("a"), _span("b", "a")
    x, y = _span("x", "y"), _span("y", "x")
    me = _span("me", "me")
    assign_traces([b, a, x, y, me])
    assert a.trace_id == b.trace_id
    assert x.trace_id == y.trace_id
    assert me.trace_id and len(me.trace_id) == 16


def test_trace_lookup_joins_earlier_batches_once_per_parent() -> None:
    known = "4bf92f3577b34da6a3ce929d0e0e4736"
    calls: list[str] = []

    def lookup(parent_hex: str) -> str | None:
        calls.append(parent_hex)
        return known if parent_hex == derive_span_id("s", "earlier") else "not-hex"

    kids = [_span("k1", "earlier"), _span("k2", "earlier"), _span("k3", "k2"), _span("z", "gone")]
    assign_traces(kids, lookup)
    assert [k.trace_id.hex() for k in kids[:3]] == [known] * 3
    assert kids[3].trace_id.hex() != known  # invalid lookup answer ignored: random
    assert sorted(calls) == sorted([derive_span_id("s", "earlier"), derive_span_id("s", "gone")])
