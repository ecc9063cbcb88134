"""Reads of the log from a sink's point of view, and the poller's acknowledgement.

- ``page_after``: the events a sink selects (its ``eventTypes``) after a log
  position, in stream order: ``GET .../sink/{sink_id}/events``.
- ``acknowledge``: a ``poller`` sink's cursor moves to the iterator its
  consumer came back with (forward only, compare-and-set): what the consumer
  acknowledged, so log retention and ``currentIterator`` work as for a sink a
  worker delivers.
- ``last_passed`` / ``next_owed``: the newest selected event at or before the
  cursor, the first one after it (``last-acked-event``, ``next-event``).

Every scan is bounded (``max_scan`` entries) so a sink whose filter matches
little cannot make one request read the whole log.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from streamsink.storage import eventlog as event_log
from streamsink.storage import keys
from streamsink.storage import sinks as store_sinks
from streamsink.storage.base import to_str
from streamsink.storage.eventlog import LogEntry
from streamsink.storage.sinks import SinkRecord

#: Entries one request may look at past those it answers (a filtering sink).
MAX_SCAN = 10_000
#: ``last_passed`` / ``next_owed`` look further: they answer one event.
MAX_SCAN_ONE = 100_000
_CHUNK = 1000
_ACK_TRIES = 8


@dataclass(slots=True)
class SinkPage:
    entries: list[LogEntry]
    #: The id of the last entry looked at (matching or not): where to go on from.
    scanned_to: str
    #: No entry of the log after ``scanned_to`` (caught up).
    done: bool


def id_key(entry_id: str) -> tuple[int, int]:
    """An entry id as a sortable pair."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def page_after(
    client: redis.Redis, sink: SinkRecord, position: str, limit: int, max_scan: int = MAX_SCAN
) -> SinkPage:
    """Up to ``limit`` entries ``sink`` selects after ``position``, in stream order."""
    found: list[LogEntry] = []
    cursor, scanned, done = position, 0, False
    while len(found) < limit and scanned < max_scan:
        want = limit - len(found) if not sink.event_types else min(_CHUNK, max_scan - scanned)
        chunk = event_log.entries_after(client, sink.stream_id, cursor, want)
        for entry in chunk:
            cursor, scanned = entry.id, scanned + 1
            if sink.matches(entry.event_type):
                found.append(entry)
                if len(found) == limit:
                    break
        if len(chunk) < want and (not chunk or cursor == chunk[-1].id):
            done = True  # read to the end of the log
            break
    if not done:
        done = not event_log.entries_after(client, sink.stream_id, cursor, 1)
    return SinkPage(found, cursor, done)


def acknowledge(client: redis.Redis, sink_id: str, position: str) -> str | None:
    """Move the sink's cursor forward to ``position`` (never back: what was
    acknowledged stays so). The cursor after the call, None when the sink is gone."""
    for _ in range(_ACK_TRIES):
        sink_key_id, raw = client.hmget(keys.sink(sink_id), ["id", "cursor"])
        if sink_key_id is None:
            return None
        current = to_str(raw) or event_log.START
        if id_key(position) <= id_key(current):
            return current
        if store_sinks.update_sink_state(client, sink_id, cursor=position, if_cursor=current):
            return position
    return to_str(client.hget(keys.sink(sink_id), "cursor"))  # busy: the next poll acks


def last_passed(
    client: redis.Redis, sink: SinkRecord, max_scan: int = MAX_SCAN_ONE
) -> LogEntry | None:
    """The newest entry at or before the sink's cursor that the sink selects:
    the last event it delivered (or skipped). None when there is none in the log."""
    if sink.cursor == event_log.START:
        return None
    before, scanned = event_log.next_id(sink.cursor), 0
    while scanned < max_scan:
        chunk = event_log.latest(client, sink.stream_id, _CHUNK, before=before)
        for entry in chunk:
            if sink.matches(entry.event_type):
                return entry
        scanned += len(chunk)
        if len(chunk) < _CHUNK:
            return None
        before = chunk[-1].id
    return None


def next_owed(
    client: redis.Redis, sink: SinkRecord, max_scan: int = MAX_SCAN_ONE
) -> LogEntry | None:
    """The first entry after the sink's cursor that the sink selects (the next
    event it owes), or None."""
    page = page_after(client, sink, sink.cursor, 1, max_scan)
    return page.entries[0] if page.entries else None
