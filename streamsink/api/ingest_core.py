"""The one implementation of ``POST /api/v1/stream/{id}/events`` for an existing
stream: the count limit, the atomic append and the wake-up of the sinks.

Both lanes end here, so they store and answer alike:

- the fast lane (``api.middleware.ingest``): parse fast, ``await
  Ingest.append_async``, answer 202 (or hand the request to the route);
- the route (``api.routes.events``): pydantic, ``check_count``, ``Ingest.append``
  (the route runs in a worker thread on the sync client), answer.

``append_async`` and ``append`` differ only in the client they talk on; the
wake-up policy is ``wake``: with the default ``app.state.on_append`` hook the
asyncio path appends and claims the kick flags of the matching idle sinks in
one script (one round trip), else the hook runs as it is after a plain append.
A failing wake-up never fails the request: the events are durable and the
reaper re-kicks sinks with pending events.

Both lanes pass the app's ``LogPolicy`` (retention and per-stream budget) to the
append script; a refused append raises ``StreamOverBudget`` (429) or
``StoreFull`` (503), both with ``Retry-After``, and stores nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis
from starlette.concurrency import run_in_threadpool

from streamsink.api.errors import validation_error
from streamsink.api.hooks import default_on_append, wake
from streamsink.delivery import scheduling
from streamsink.storage import appends
from streamsink.storage.connection import async_twin
from streamsink.storage.eventlog import LogPolicy
from streamsink.storage.pipelined import PipelinedRedis

log = logging.getLogger(__name__)

Events = Sequence[tuple[str, str]]


def check_count(count: int, limit: int) -> None:
    """422 past ``STREAMSINK_MAX_EVENTS_PER_REQUEST`` (the fast lane leaves such
    a body to the route, which raises this)."""
    if count > limit:
        raise validation_error(
            ("body", "events"),
            f"List should have at most {limit} items (STREAMSINK_MAX_EVENTS_PER_REQUEST)",
            "too_long",
        )


def policy(state: Any) -> LogPolicy:
    """The log policy of the app's settings (``state.settings``)."""
    return LogPolicy.for_settings(getattr(state, "settings", None))


def event_types(events: Events) -> set[str]:
    return {name for name, _ in events}


class Ingest:
    """Appends on the app's sync redis-py ``client`` or, in the fast lane, on a
    pipelined connection to the same server (``storage.pipelined``: the
    commands of concurrent POSTs share it); ``enabled`` is False when no asyncio
    twin can be made (fakeredis in unit tests)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.enabled = async_twin(client) is not None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aclient: PipelinedRedis | None = None

    def append(self, state: Any, stream: str, events: Events) -> str | None:
        """Append to an existing stream and wake its sinks (sync client). The
        stream's id, or None when it does not exist."""
        found = appends.append_existing(self.client, stream, events, policy=policy(state))
        if found is not None:
            wake(state, self.client, found, event_types(events))
        return found

    async def append_async(self, state: Any, stream: str, events: Events) -> str | None:
        """``append`` on the asyncio twin; the default hook is fused into the
        append script (see the module docstring)."""
        aclient = self._async_client()
        if getattr(state, "on_append", None) is default_on_append:
            kicked = await appends.append_and_kick_async(
                aclient, stream, events, scheduling.KICK_TTL, policy=policy(state)
            )
            if kicked is None:
                return None
            sid, claimed = kicked
            if claimed:
                await _in_thread(sid, scheduling.enqueue_claimed, self.client, sid, claimed)
            return sid
        found = await appends.append_existing_async(aclient, stream, events, policy=policy(state))
        if found is not None and getattr(state, "on_append", None) is not None:
            await _in_thread(found, wake, state, self.client, found, event_types(events))
        return found

    def _async_client(self) -> PipelinedRedis:
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._loop is not loop:
            twin = async_twin(self.client)
            assert twin is not None  # enabled
            self._aclient, self._loop = PipelinedRedis(twin), loop
        return self._aclient


async def _in_thread(sid: str, fn: Callable[..., Any], *args: Any) -> None:
    """Wake-up work off the event loop; logs, never raises."""
    try:
        await run_in_threadpool(fn, *args)
    except Exception:
        log.exception("waking the sinks of stream %s failed", sid)
