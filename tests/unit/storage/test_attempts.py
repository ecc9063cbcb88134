"""``storage.attempts``: the capped, newest-first attempt log of a sink, and its
pagination by attempt id (real Redis)."""

from __future__ import annotations

import re

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
