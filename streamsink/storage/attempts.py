"""The delivery attempt log of a sink: the newest ``MAX_ATTEMPTS``, newest first.

Kept as a capped Redis list of JSON records at ``ss:attempts:{sink_id}``.
Pagination uses the attempt id as the iterator: the page after an attempt
starts with the next older one. What the API answers (``svix_shape``) carries
Svix's ``SinkAttemptOut`` fields beside streamsink's own.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import redis

from streamsink.storage import keys

MAX_ATTEMPTS = 200


#: What ``_new_id`` makes: the attempts list refuses any other iterator (422).
ATTEMPT_ID_PATTERN = r"^atmpt_[0-9a-f]{9,40}$"


def _new_id() -> str:
    # Time-ordered so ids sort like the list; random tail for uniqueness.
    return f"atmpt_{time.time_ns():x}{secrets.token_hex(4)}"


@dataclass(slots=True)
class Attempt:
    outcome: str  # success | retrying | failed | split
    spans_sent: int
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    rejected_spans: int = 0
    response_excerpt: str | None = None
    first_event: str | None = None
    last_event: str | None = None
    num_events: int | None = None  # events of the batch (None: not known)
    id: str = field(default_factory=_new_id)
    timestamp: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds")
    )

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "outcome": self.outcome,
            "statusCode": self.status_code,
            "error": self.error,
            "spansSent": self.spans_sent,
            "rejectedSpans": self.rejected_spans,
            "durationMs": round(self.duration_ms, 3),
            "responseExcerpt": self.response_excerpt,
            "firstEventId": self.first_event,
            "lastEventId": self.last_event,
            "numEvents": self.num_events,
        }


#: Svix's ``MessageStatus`` / ``MessageStatusText`` of an attempt: a delivered
#: batch is a success (0); every other outcome (a retryable or permanent
#: failure, a 413 split, a 415 encoding switch) is an attempt that failed (2).
STATUS_SUCCESS, STATUS_FAIL = 0, 2
STATUS_TEXT = {0: "success", 1: "pending", 2: "fail", 3: "sending", 4: "canceled"}


def status_of(row: dict[str, Any]) -> int:
    return STATUS_SUCCESS if row.get("outcome") == "success" else STATUS_FAIL


def svix_shape(row: dict[str, Any], sink_id: str) -> dict[str, Any]:
    """A stored record as the API answers it: Svix's ``SinkAttemptOut``
    (``id sinkId status statusText firstEventId lastEventId numEvents
    responseDurationMs timestamp``) and streamsink's fields beside them.
    Records written before ``numEvents`` was kept answer 1 for a one-event
    batch and 0 (not known) otherwise."""
    status = status_of(row)
    num_events = row.get("numEvents")
    if num_events is None:
        first = row.get("firstEventId")
        num_events = 1 if first is not None and first == row.get("lastEventId") else 0
    return {
        **row,
        "sinkId": sink_id,
        "status": status,
        "statusText": STATUS_TEXT[status],
        "numEvents": num_events,
        "responseDurationMs": round(row.get("durationMs") or 0),
    }


def record(connection: redis.Redis | redis.client.Pipeline, sink_id: str, attempt: Attempt) -> None:
    """Push an attempt (works inside a pipeline)."""
    key = keys.attempts(sink_id)
    connection.lpush(key, orjson.dumps(attempt.to_wire()))
    connection.ltrim(key, 0, MAX_ATTEMPTS - 1)


def list_attempts(
    connection: redis.Redis,
    sink_id: str,
    *,
    limit: int = 50,
    iterator: str | None = None,
    status: int | None = None,
    before: datetime | None = None,
    after: datetime | None = None,
) -> tuple[list[dict[str, Any]], str | None, bool]:
    """A page of attempts, newest first: ``(data, next_iterator, done)``, as
    Svix shapes them. ``status`` (Svix's ``MessageStatus``), ``before`` and
    ``after`` (exclusive, on ``timestamp``) filter; the iterator is the id of
    the last attempt of the previous page."""
    rows = [orjson.loads(raw) for raw in connection.lrange(keys.attempts(sink_id), 0, -1)]
    start = 0
    if iterator:
        start = next((i + 1 for i, row in enumerate(rows) if row["id"] == iterator), len(rows))
    matching = [row for row in rows[start:] if _matches(row, status, before, after)]
    page = matching[:limit]
    done = limit >= len(matching)
    next_iterator = page[-1]["id"] if page and not done else None
    return [svix_shape(row, sink_id) for row in page], next_iterator, done


def get_attempt(connection: redis.Redis, sink_id: str, attempt_id: str) -> dict[str, Any] | None:
    """One attempt of the sink by id, as Svix shapes it (None when not kept)."""
    for raw in connection.lrange(keys.attempts(sink_id), 0, -1):
        row = orjson.loads(raw)
        if row["id"] == attempt_id:
            return svix_shape(row, sink_id)
    return None


def _matches(
    row: dict[str, Any], status: int | None, before: datetime | None, after: datetime | None
) -> bool:
    if status is not None and status_of(row) != status:
        return False
    if before is None and after is None:
        return True
    at = datetime.fromisoformat(row["timestamp"])
    return (before is None or at < _utc(before)) and (after is None or at > _utc(after))


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def delete_all(connection: redis.Redis, sink_id: str) -> None:
    connection.delete(keys.attempts(sink_id))
