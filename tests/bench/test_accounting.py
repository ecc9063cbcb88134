"""The bench's bookkeeping of which sequence numbers each receiver path owes:
round-robin POSTs per stream, refused POSTs left out, the complement."""

from __future__ import annotations

from tools.bench.harness import count_in, post_ranges
from tools.bench.soak import _complement

# 7 POSTs of 10 events over 3 streams (the last one short), seq 100..165
SENT = {"seq_start": 100, "seq_end": 165}


def test_post_ranges_follow_the_round_robin() -> None:
    assert post_ranges(SENT, 10, 3, {2}) == [[120, 130], [150, 160]]
    assert post_ranges(SENT, 10, 3, {0}) == [[100, 110], [130, 140], [160, 165]]
    everything = post_ranges(SENT, 10, 3, {0, 1, 2})
    assert sum(b - a for a, b in everything) == 65


def test_refused_posts_are_not_owed() -> None:
    to_last = post_ranges(SENT, 10, 3, {2})
    refused = [[150, 160, 429], [100, 110, 503]]
    assert count_in(to_last, refused) == 10
    assert count_in(to_last, []) == 20


def test_complement_is_what_the_other_streams_got() -> None:
    to_last = post_ranges(SENT, 10, 3, {2})
    others = _complement(100, 165, to_last)
    assert others == [[100, 120], [130, 150], [160, 165]]
    assert _complement(100, 165, []) == [[100, 165]]
    assert _complement(100, 120, [[100, 120]]) == []
