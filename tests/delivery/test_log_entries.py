"""Decoding XRANGE replies in every shape the delivery path may see."""

from __future__ import annotations

import redis

from streamsink.storage import eventlog as event_log
from streamsink.storage.eventlog import LogEntry


def test_raw_reply_usual_order_and_others() -> None:
    raw = [
        [b"1-0", [b"t", b"a", b"p", b'{"x":1}', b"ts", b"5"]],
        [b"2-0", [b"p", b"pay", b"t", b"b", b"ts", b"6"]],  # another order
        [b"3-0", [b"t", b"c", b"p", b"q"]],  # no ts: the id's time
        (b"4-1", {b"t": b"d", b"p": b"r", b"ts": b"7"}),  # redis-py's callback shape
        ("5-0", {"t": "e", "p": "s", "ts": "8"}),  # decoded replies
    ]
    assert event_log.parse_entries(raw) == [
        LogEntry("1-0", "a", '{"x":1}', 5),
        LogEntry("2-0", "b", "pay", 6),
        LogEntry("3-0", "c", "q", 3),
        LogEntry("4-1", "d", "r", 7),
        LogEntry("5-0", "e", "s", 8),
    ]
    assert event_log.parse_entries(None) == [] and event_log.parse_entries([]) == []


def test_entries_after_on_client_and_pipeline(redis_client: redis.Redis) -> None:
    ids = event_log.append(redis_client, "strm_x", [("a", "1"), ("b", "2"), ("c", "3")])
    got = event_log.entries_after(redis_client, "strm_x", ids[0], 10)
    assert [(e.id, e.event_type, e.payload) for e in got] == [
        (ids[1], "b", "2"),
        (ids[2], "c", "3"),
    ]
    assert [e.ts for e in got] == [int(i.split("-")[0]) for i in ids[1:]]
    pipe = redis_client.pipeline(transaction=False)
    event_log.stage_entries_after(pipe, "strm_x", event_log.START, 2)
    (raw,) = pipe.execute()
    assert [e.id for e in event_log.parse_entries(raw)] == ids[:2]
    assert event_log.read_after(redis_client, "strm_x", ids[2], 5) == []
