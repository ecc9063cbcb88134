"""``storage.attempts``: the capped, newest-first attempt log of a sink, and its
pagination by attempt id (real Redis)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import orjson
import redis

from streamsink.storage import attempts, keys
from streamsink.storage.attempts import MAX_ATTEMPTS, Attempt


def _attempt(n: int, outcome: str = "success") -> Attempt:
    return Attempt(outcome, n, 1.5, status_code=200, first_event=f"{n}-0", last_event=f"{n}-0")


def test_record_and_read_back_the_wire_fields(redis_client: redis.Redis) -> None:
    a = Attempt(
        "failed",
        3,
        12.3456,
        status_code=400,
        error="HTTP 400: bad span",
        rejected_spans=1,
        response_excerpt="bad span",
        first_event="1-0",
        last_event="1-2",
        num_events=3,
    )
    attempts.record(redis_client, "sink_a", a)
    page, next_iterator, done = attempts.list_attempts(redis_client, "sink_a")
    assert page == [
        {
            "id": a.id,
            "timestamp": a.timestamp,
            "outcome": "failed",
            "statusCode": 400,
            "error": "HTTP 400: bad span",
            "spansSent": 3,
            "rejectedSpans": 1,
            "durationMs": 12.346,
            "responseExcerpt": "bad span",
            "firstEventId": "1-0",
            "lastEventId": "1-2",
            "numEvents": 3,
            # Svix's SinkAttemptOut beside streamsink's fields
            "sinkId": "sink_a",
            "status": 2,
            "statusText": "fail",
            "responseDurationMs": 12,
        }
    ]
    assert (next_iterator, done) == (None, True)
    assert re.fullmatch(attempts.ATTEMPT_ID_PATTERN, a.id)
    # Another sink's log is its own.
    assert attempts.list_attempts(redis_client, "sink_b") == ([], None, True)


def test_newest_first(redis_client: redis.Redis) -> None:
    for n in range(5):
        attempts.record(redis_client, "s", _attempt(n))
    page, _, _ = attempts.list_attempts(redis_client, "s")
    assert [row["spansSent"] for row in page] == [4, 3, 2, 1, 0]
    # Ids are time-ordered like the list: the newest sorts last.
    ids = [row["id"] for row in page]
    assert sorted(ids, reverse=True) == ids


def test_capped_at_max_attempts_dropping_the_oldest(redis_client: redis.Redis) -> None:
    extra = 7
    pipe = redis_client.pipeline(transaction=False)
    for n in range(MAX_ATTEMPTS + extra):
        attempts.record(pipe, "s", _attempt(n))  # works on a pipeline too
    pipe.execute()
    assert redis_client.llen(keys.attempts("s")) == MAX_ATTEMPTS
    page, _, done = attempts.list_attempts(redis_client, "s", limit=MAX_ATTEMPTS + 50)
    assert done
    assert [row["spansSent"] for row in page] == list(
        range(MAX_ATTEMPTS + extra - 1, extra - 1, -1)
    )


def test_pagination_by_attempt_id(redis_client: redis.Redis) -> None:
    for n in range(5):
        attempts.record(redis_client, "s", _attempt(n))
    seen: list[int] = []
    iterator = None
    pages = 0
    while True:
        page, iterator, done = attempts.list_attempts(redis_client, "s", limit=2, iterator=iterator)
        pages += 1
        seen += [row["spansSent"] for row in page]
        if done:
            assert iterator is None
            break
        assert iterator == page[-1]["id"]  # the next page starts after the last shown
        assert pages < 10
    assert seen == [4, 3, 2, 1, 0]
    assert pages == 3
    # An exact fit ends the walk on that page (no empty page after it).
    page, iterator, done = attempts.list_attempts(redis_client, "s", limit=5)
    assert len(page) == 5 and done and iterator is None


def test_an_iterator_no_longer_in_the_log_gives_an_empty_last_page(
    redis_client: redis.Redis,
) -> None:
    for n in range(3):
        attempts.record(redis_client, "s", _attempt(n))
    page, iterator, done = attempts.list_attempts(redis_client, "s", iterator="atmpt_0123456789")
    assert (page, iterator, done) == ([], None, True)


def test_delete_all(redis_client: redis.Redis) -> None:
    attempts.record(redis_client, "s", _attempt(1))
    attempts.record(redis_client, "other", _attempt(2))
    attempts.delete_all(redis_client, "s")
    assert attempts.list_attempts(redis_client, "s")[0] == []
    assert len(attempts.list_attempts(redis_client, "other")[0]) == 1


def test_svix_status_of_each_outcome(redis_client: redis.Redis) -> None:
    outcomes = ["success", "retrying", "failed", "split", "switched"]
    for n, outcome in enumerate(outcomes):
        attempts.record(redis_client, "s", _attempt(n, outcome))
    page, _, _ = attempts.list_attempts(redis_client, "s")
    shown = {row["outcome"]: (row["status"], row["statusText"]) for row in page}
    assert shown == {
        "success": (0, "success"),
        "retrying": (2, "fail"),
        "failed": (2, "fail"),
        "split": (2, "fail"),
        "switched": (2, "fail"),
    }


def test_records_without_num_events_answer_a_sensible_count(redis_client: redis.Redis) -> None:
    """Records written before ``numEvents`` was kept: 1 for a one-event batch,
    0 (not known) otherwise; never null (Svix's field is an integer)."""
    key = keys.attempts("s")
    for first, last in (("1-0", "1-0"), ("1-0", "3-0"), (None, None)):
        old = _attempt(1).to_wire()
        del old["numEvents"]
        old.update(firstEventId=first, lastEventId=last)
        redis_client.lpush(key, orjson.dumps(old))
    page, _, _ = attempts.list_attempts(redis_client, "s")
    assert [row["numEvents"] for row in page] == [0, 0, 1]


def test_filters_status_before_after_and_get(redis_client: redis.Redis) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for n in range(6):
        a = _attempt(n, "success" if n % 2 == 0 else "retrying")
        a.timestamp = (base + timedelta(minutes=n)).isoformat(timespec="milliseconds")
        attempts.record(redis_client, "s", a)
        made.append(a)
    ok, _, _ = attempts.list_attempts(redis_client, "s", status=0)
    assert [row["spansSent"] for row in ok] == [4, 2, 0]
    failed, _, _ = attempts.list_attempts(redis_client, "s", status=2)
    assert [row["spansSent"] for row in failed] == [5, 3, 1]
    assert attempts.list_attempts(redis_client, "s", status=1) == ([], None, True)
    window, _, _ = attempts.list_attempts(
        redis_client, "s", after=base + timedelta(minutes=1), before=base + timedelta(minutes=4)
    )
    assert [row["spansSent"] for row in window] == [3, 2]  # both bounds exclusive
    naive = attempts.list_attempts(redis_client, "s", before=datetime(2026, 1, 1, 0, 2))[0]
    assert [row["spansSent"] for row in naive] == [1, 0]  # a naive time is UTC
    # filtered pages walk with the iterator, none missing or doubled
    first, iterator, done = attempts.list_attempts(redis_client, "s", status=2, limit=2)
    assert [row["spansSent"] for row in first] == [5, 3] and not done
    rest, iterator, done = attempts.list_attempts(
        redis_client, "s", status=2, limit=2, iterator=iterator
    )
    assert [row["spansSent"] for row in rest] == [1] and done and iterator is None
    one = attempts.get_attempt(redis_client, "s", made[3].id)
    assert one is not None and one["id"] == made[3].id and one["sinkId"] == "s"
    assert one["status"] == 2 and one["numEvents"] == 1
    assert attempts.get_attempt(redis_client, "other", made[3].id) is None
    assert attempts.get_attempt(redis_client, "s", "atmpt_0123456789") is None
