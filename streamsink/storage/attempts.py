"""The delivery attempt log of a sink: the newest ``MAX_ATTEMPTS``, newest first.

Kept as a capped Redis list of JSON records at ``ss:attempts:{sink_id}``.
Pagination uses the attempt id as the iterator: the page after an attempt
starts with the next older one.
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
        }


def record(connection: redis.Redis | redis.client.Pipeline, sink_id: str, attempt: Attempt) -> None:
    """Push an attempt (works inside a pipeline)."""
    key = keys.attempts(sink_id)
    connection.lpush(key, orjson.dumps(attempt.to_wire()))
    connection.ltrim(key, 0, MAX_ATTEMPTS - 1)


def list_attempts(
    connection: redis.Redis, sink_id: str, *, limit: int = 50, iterator: str | None = None
) -> tuple[list[dict[str, Any]], str | None, bool]:
    """A page of attempts, newest first: ``(data, next_iterator, done)``."""
    rows = [orjson.loads(raw) for raw in connection.lrange(keys.attempts(sink_id), 0, -1)]
    start = 0
    if iterator:
        start = next((i + 1 for i, row in enumerate(rows) if row["id"] == iterator), len(rows))
    page = rows[start : start + limit]
    done = start + limit >= len(rows)
    next_iterator = page[-1]["id"] if page and not done else None
    return page, next_iterator, done


def delete_all(connection: redis.Redis, sink_id: str) -> None:
    connection.delete(keys.attempts(sink_id))
