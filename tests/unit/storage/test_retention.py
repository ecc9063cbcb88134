"""The event log's bounds (``eventlog.trim_stream`` and the append script's trim),
on a real Redis: delivered events go after the replay window, undelivered ones
stay while an enabled sink owes them, a disabled or paused sink's are dropped
past the window and counted (sink fields and metric), appends trim by work."""

from __future__ import annotations

import time
from collections.abc import Callable

import redis

from streamsink.delivery import reaper
from streamsink.delivery.engine import Engine
from streamsink.storage import eventlog, keys
from streamsink.storage import sinks as store_sinks
from streamsink.storage.eventlog import LogPolicy
from tests.helpers.receiver_server import closed_port_url

from ..conftest import Api

URL = closed_port_url()
WINDOW = LogPolicy(retention_ms=60_000, max_bytes=0)


def _ids(r: redis.Redis, stream: str) -> list[str]:
    return [e.id for e in eventlog.parse_entries(r.xrange(keys.event_log(stream)))]


def _later(ms: int) -> int:
    return int(time.time() * 1000) + ms


def test_delivered_events_go_after_the_window_undelivered_stay(
    api: Api, redis_client: redis.Redis
) -> None:
    stream = api.stream()
    api.post(stream, 600, per=10)
    ids = _ids(redis_client, stream)
    behind = api.sink(stream, URL)  # enabled, delivered the first 300 only
    ahead = api.sink(stream, URL)  # delivered everything
    store_sinks.update_sink_state(redis_client, behind, cursor=ids[299])

    # Inside the window nothing goes, delivered or not.
    assert eventlog.trim_stream(redis_client, stream, WINDOW).removed == 0
    assert _ids(redis_client, stream) == ids

    done = eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(61_000))
    kept = _ids(redis_client, stream)
    assert done.removed == len(ids) - len(kept) > 0
    assert kept == ids[len(ids) - len(kept) :]  # from the front only
    assert set(ids[300:]) <= set(kept)  # all the enabled sink still owes is kept
    assert done.bytes < eventlog.entry_bytes([("e", '{"seq": 100}')]) * 600
    for sink in (behind, ahead):  # an enabled sink never loses events
        assert api.get_sink(stream, sink)["droppedEvents"] == 0

    # Once it caught up, the rest goes too (whole nodes: at most one partial left).
    store_sinks.update_sink_state(redis_client, behind, cursor=ids[-1])
    eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(61_000))
    assert len(_ids(redis_client, stream)) < 300


def test_a_retrying_sink_holds_its_events_past_the_window(
    api: Api, redis_client: redis.Redis
) -> None:
    stream = api.stream()
    api.post(stream, 200)
    ids = _ids(redis_client, stream)
    sink = api.sink(stream, URL)
    store_sinks.update_sink_state(redis_client, sink, cursor="0-0", status="retrying")
    assert eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(3_600_000)) == (
        0,
        eventlog.estimated_bytes(redis_client, stream),
    )
    assert _ids(redis_client, stream) == ids


def test_a_disabled_sinks_events_are_dropped_past_the_window_and_counted(
    api: Api, redis_client: redis.Redis
) -> None:
    stream = api.stream()
    api.post(stream, 500, per=10)
    ids = _ids(redis_client, stream)
    first = api.sink(stream, URL)  # disabled after delivering 50
    second = api.sink(stream, URL)  # paused after delivering 150
    caught_up = api.sink(stream, URL)
    store_sinks.update_sink_state(redis_client, first, cursor=ids[49], status="disabled")
    store_sinks.update_sink_state(redis_client, second, cursor=ids[149], status="paused")

    eventlog.trim_stream(redis_client, stream, WINDOW)  # inside the window: held
    assert _ids(redis_client, stream) == ids
    assert api.get_sink(stream, first)["droppedEvents"] == 0

    before = time.time()
    eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(61_000))
    kept = set(_ids(redis_client, stream))
    assert len(kept) < 500
    lost_first = len([i for i in ids[50:] if i not in kept])
    lost_second = len([i for i in ids[150:] if i not in kept])
    assert lost_first > lost_second > 0  # each counts exactly what it had not passed
    shown = api.get_sink(stream, first)
    assert shown["droppedEvents"] == lost_first
    assert shown["droppedSince"] is not None
    assert shown["status"] == "disabled" and shown["currentIterator"] == ids[49]
    assert api.get_sink(stream, second)["droppedEvents"] == lost_second
    assert api.get_sink(stream, caught_up)["droppedEvents"] == 0
    metrics = api.http.get("/metrics").text
    assert f'streamsink_events_dropped_total{{sink="{first}"}} {float(lost_first)}' in metrics
    assert f'streamsink_events_dropped_total{{sink="{second}"}} {float(lost_second)}' in metrics

    # Later drops add up, each entry counted once; droppedSince stays the first.
    api.post(stream, 100, start=500, per=10)
    eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(61_000))
    gone = 600 - len(_ids(redis_client, stream))
    again = api.get_sink(stream, first)
    assert again["droppedEvents"] == gone - 50
    assert again["droppedSince"] == shown["droppedSince"]
    record = store_sinks.get_sink(redis_client, first)
    assert record is not None and (record.dropped_since or 0) >= before * 1000

    # Re-enabled, it resumes from the oldest event still kept.
    api.call("PATCH", f"/stream/{stream}/sink/{first}", 200, json={"status": "enabled"})
    sink = store_sinks.get_sink(redis_client, first)
    assert sink is not None
    oldest = _ids(redis_client, stream)[0]
    assert eventlog.read_after(redis_client, stream, sink.cursor, 1)[0][0] == oldest


def test_appends_trim_by_work_with_the_app_settings(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """No reaper round: the append script trims the stream when its trim is due."""
    from fastapi.testclient import TestClient

    from streamsink.api.app import create_app
    from streamsink.settings import Settings

    from ..conftest import AUTH, TOKEN

    settings = Settings(auth_token=TOKEN, redis_url=redis_url, log_retention_secs=0)
    with TestClient(create_app(settings, redis_client), headers=AUTH) as client:
        api = Api(client)
        stream = api.stream()
        sink = api.sink(stream, URL)  # at the log's end: owes nothing
        store_sinks.update_sink_state(redis_client, sink, cursor="0-0")  # now owes all
        for start in range(0, 2000, 100):
            api.post(stream, 100, start=start)
            redis_client.hset(keys.log_meta(stream), "next", 0)  # due at every append
        assert eventlog.length(redis_client, stream) == 2000  # the sink owes them
        store_sinks.update_sink_state(redis_client, sink, cursor=_ids(redis_client, stream)[-1])
        redis_client.hset(keys.log_meta(stream), "next", 0)
        api.post(stream, 1, start=2000)
        assert eventlog.length(redis_client, stream) < 200


def test_a_stream_with_no_sink_keeps_only_the_window(
    api: Api, redis_client: redis.Redis, engine_factory: Callable[..., Engine]
) -> None:
    stream = api.stream()
    api.post(stream, 300)
    engine = engine_factory(log_retention_secs=0)
    reaper.trim_log(engine, stream)  # the reaper's call: the same trim
    assert len(_ids(redis_client, stream)) < 100


def test_one_trim_is_bounded_by_its_limit(api: Api, redis_client: redis.Redis) -> None:
    stream = api.stream()
    for start in range(0, 3000, 10):  # 300 appends: 300 entries of 10 events
        api.post(stream, 10, start=start)
    policy = LogPolicy(retention_ms=0, max_bytes=0, trim_limit=50)
    rounds = []
    for _ in range(100):  # each call removes whole nodes, at most ``trim_limit`` entries
        removed = eventlog.trim_stream(redis_client, stream, policy, now_ms=_later(1000)).removed
        if not removed:
            break
        rounds.append(removed)
    assert len(rounds) >= 300 // 50 and max(rounds) <= 50 * 10  # removed counts events
    assert sum(rounds) + eventlog.length(redis_client, stream) == 3000
    assert redis_client.xlen(keys.event_log(stream)) < 50  # at most a partial node left


def test_a_pollers_unread_events_are_held_for_the_window_then_dropped_and_counted(
    api: Api, redis_client: redis.Redis
) -> None:
    """A poller sink's consumer sets the pace: like a disabled sink, what it has
    not acknowledged is kept for the replay window, then dropped and counted."""
    stream = api.stream()
    api.post(stream, 300, per=10)
    ids = _ids(redis_client, stream)
    poller = api.call("POST", f"/stream/{stream}/sink", 201, json={"type": "poller"})["id"]
    store_sinks.update_sink_state(redis_client, poller, cursor=ids[99])

    eventlog.trim_stream(redis_client, stream, WINDOW)  # inside the window: held
    assert _ids(redis_client, stream) == ids

    eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(61_000))
    kept = set(_ids(redis_client, stream))
    lost = len([i for i in ids[100:] if i not in kept])
    assert lost > 0
    shown = api.get_sink(stream, poller)
    assert shown["droppedEvents"] == lost and shown["droppedSince"] is not None


def test_drops_are_counted_in_events_when_a_cursor_is_inside_an_entry(
    api: Api, redis_client: redis.Redis
) -> None:
    """An entry holds one append's events and goes whole: a parked sink whose
    cursor is inside one loses exactly the events after it that went."""
    stream = api.stream()
    api.post(stream, 95, per=10)  # entries of 10 events, the last of 5
    ids = _ids(redis_client, stream)
    parked = api.sink(stream, URL)
    middle = api.sink(stream, URL)
    api.sink(stream, URL)  # caught up
    store_sinks.update_sink_state(redis_client, parked, cursor=ids[14], status="disabled")
    store_sinks.update_sink_state(redis_client, middle, cursor=ids[56], status="paused")
    done = eventlog.trim_stream(redis_client, stream, WINDOW, now_ms=_later(61_000))
    kept = _ids(redis_client, stream)
    assert done.removed == 95 - len(kept) == 95 and eventlog.length(redis_client, stream) == 0
    for sink, at in ((parked, 14), (middle, 56)):
        lost = len([i for i in ids[at + 1 :] if i not in kept])
        assert api.get_sink(stream, sink)["droppedEvents"] == lost > 0
