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
    assert [e.id for e in event_log.entries_from(raw, event_log.START, 2)] == ids[:2]
    assert event_log.read_after(redis_client, "strm_x", ids[2], 5) == []


def test_an_append_is_one_entry_and_each_event_has_its_own_id(redis_client: redis.Redis) -> None:
    first = event_log.append(redis_client, "strm_x", [("a", "1"), ("b", "22"), ("c", "")])
    second = event_log.append(redis_client, "strm_x", [("d", "é\n,4")])
    assert redis_client.xlen("ss:log:strm_x") == 2
    ids = [*(first or []), *(second or [])]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == 4
    ms, seq = ids[0].split("-")
    assert ids[:3] == [f"{ms}-{int(seq) + i}" for i in range(3)]  # one ms, seqs in a row
    raw_ids = [eid.decode() for eid, _ in redis_client.xrange("ss:log:strm_x")]
    assert raw_ids == [ids[2], ids[3]]  # an entry sits at its last event's id
    got = event_log.entries_after(redis_client, "strm_x", event_log.START, 10)
    assert [(e.id, e.event_type, e.payload) for e in got] == list(
        zip(ids, "abcd", ["1", "22", "", "é\n,4"], strict=True)
    )
    # A cursor inside an entry: the rest of it, then the next.
    assert [e.id for e in event_log.entries_after(redis_client, "strm_x", ids[0], 2)] == ids[1:3]
    assert [e.id for e in event_log.entries_after(redis_client, "strm_x", ids[1], 10)] == ids[2:]
    assert event_log.last_id(redis_client, "strm_x") == ids[3]
    assert event_log.length(redis_client, "strm_x") == 4
    # Newest first, strictly before an id inside an entry.
    assert [e.id for e in event_log.latest(redis_client, "strm_x", 10)] == ids[::-1]
    assert [e.id for e in event_log.latest(redis_client, "strm_x", 2, before=ids[3])] == [
        ids[2],
        ids[1],
    ]
    assert [e.id for e in event_log.latest(redis_client, "strm_x", 5, before=ids[1])] == ids[:1]


def test_reads_count_events_not_entries(redis_client: redis.Redis) -> None:
    """One read gives ``count`` events whatever the entries hold: single events,
    big appends, and entries of an older release before them."""
    redis_client.xadd("ss:log:strm_x", {"t": "old", "p": "0"}, id="5-0")
    ids = ["5-0"]
    for size in (1, 1, 1, 50, 1, 120, 3):
        ids += event_log.append(redis_client, "strm_x", [("e", str(i)) for i in range(size)]) or []
    assert len(ids) == 178 and ids == sorted(set(ids), key=lambda i: tuple(map(int, i.split("-"))))
    for cursor_at in (-1, 0, 2, 10, 60, 100, 177):
        cursor = event_log.START if cursor_at < 0 else ids[cursor_at]
        for count in (1, 7, 100, 500):
            got = [e.id for e in event_log.entries_after(redis_client, "strm_x", cursor, count)]
            assert got == ids[cursor_at + 1 : cursor_at + 1 + count], (cursor_at, count)
    # Behind an older release's entry the count is in entries (until it is trimmed).
    assert event_log.length(redis_client, "strm_x") == redis_client.xlen("ss:log:strm_x") == 8
    assert [e.id for e in event_log.latest(redis_client, "strm_x", 500)] == ids[::-1]
    newest = event_log.latest(redis_client, "strm_x", 30, before=ids[150])
    assert [e.id for e in newest] == ids[120:150][::-1]


def test_ids_never_go_back_when_the_clock_is_behind_the_log(redis_client: redis.Redis) -> None:
    """An append's ids follow the newest event's, within its millisecond when
    Redis's clock is behind it (a restored data dir, a clock step back)."""
    ahead = "99999999999999-5"
    redis_client.xadd("ss:log:strm_x", {"t": "old", "p": "0"}, id=ahead)  # an older release's
    assert event_log.append(redis_client, "strm_x", [("a", "1"), ("b", "2")]) == [
        "99999999999999-6",
        "99999999999999-7",
    ]
    assert event_log.append(redis_client, "strm_x", [("c", "3")]) == ["99999999999999-8"]
    assert event_log.last_id(redis_client, "strm_x") == "99999999999999-8"
    got = event_log.entries_after(redis_client, "strm_x", ahead, 10)
    assert [(e.id, e.event_type) for e in got] == [
        ("99999999999999-6", "a"),
        ("99999999999999-7", "b"),
        ("99999999999999-8", "c"),
    ]


def test_a_read_ships_only_the_events_it_wants(redis_client: redis.Redis) -> None:
    """A read of a few events of a big append gets those events only (a sink
    with batchSize 1 would otherwise fetch the whole append per event), cut by
    UTF-8 byte lengths: payloads beyond ASCII stay whole."""
    payloads = [f"é{i}ü" * (i % 3) + "x" * i for i in range(300)]
    ids = event_log.append(
        redis_client, "strm_x", [(f"t{i % 7}", p) for i, p in enumerate(payloads)]
    )
    assert ids is not None and redis_client.xlen("ss:log:strm_x") == 1
    for cursor_at, count in ((-1, 1), (0, 1), (10, 5), (149, 100), (298, 10), (100, 300)):
        cursor = event_log.START if cursor_at < 0 else ids[cursor_at]
        raw = event_log.stage_entries_after(redis_client, "strm_x", cursor, count)
        wanted = list(range(cursor_at + 1, min(cursor_at + 1 + count, 300)))
        assert len(raw) == 1
        fields = dict(zip(raw[0][1][::2], raw[0][1][1::2], strict=True))
        assert int(fields[b"n"]) == len(wanted)  # cut: only what was asked
        assert raw[0][0].decode() == ids[wanted[-1]]
        got = event_log.entries_from(raw, cursor, count)
        assert [(e.id, e.event_type, e.payload) for e in got] == [
            (ids[i], f"t{i % 7}", payloads[i]) for i in wanted
        ]
