"""The hot route's fast lane: ``POST /api/v1/stream/{id}/events`` without the
router, the dependency solver, pydantic or a thread hand-off.

``IngestFastPath`` is ASGI middleware inside ``api.middleware.body`` (which
parsed the token and left the decoded body in the scope) and idempotency. It
answers only the plain, valid case: an accepted bearer token, a body
``{"events": [{"eventType": ..., "payload": ...}, ...]}`` (``stream`` absent or
null) within the limits, and a stream that exists. It appends the events
and wakes the sinks with ``api.ingest_core`` (on its asyncio client), as the
route does. Anything else (a bad token, any other body shape, a
value the model would reject or coerce, a missing stream) is handed, body
intact, to the FastAPI route, which gives the one authoritative answer; so both
lanes store and answer alike by construction. A refused append (the stream over
its budget: 429, Redis out of memory: 503, both with ``Retry-After``) is
answered here as the route's error handler answers it.
"""

from __future__ import annotations

import logging
import re

import orjson
import redis
import redis.asyncio
from starlette.types import ASGIApp, Receive, Scope, Send

from streamsink.api.deps import authorized
from streamsink.api.errors import api_error_response, error_response
from streamsink.api.ingest_core import Ingest
from streamsink.api.middleware.body import BODY
from streamsink.errors import StoreFull, StreamOverBudget
from streamsink.resource_ids import DOT_SEGMENTS, NAME_MAX_LEN, UID_MAX_LEN, UID_PATTERN
from streamsink.settings import Settings

log = logging.getLogger(__name__)

_CHARS = UID_PATTERN[1:-2]  # the uid alphabet, a character class
_PATH = re.compile(rf"/api/v1/stream/({_CHARS}{{1,{UID_MAX_LEN}}})/events")
_NAME = re.compile(rf"{_CHARS}{{1,{NAME_MAX_LEN}}}")
_HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"2")]

Events = list[tuple[str, str]]

#: Event type names already found valid (a regex match a name costs more than the
#: rest of an event's checks); at most ``_KNOWN_NAMES_MAX`` are kept.
_known_names: set[str] = set()
_KNOWN_NAMES_MAX = 1024


def _valid_name(name: str) -> bool:
    """``name`` (a str) is a valid event type name; remembered when it is."""
    if name in _known_names:
        return True
    if _NAME.fullmatch(name) is None or name in DOT_SEGMENTS:
        return False
    if len(_known_names) < _KNOWN_NAMES_MAX:
        _known_names.add(name)
    return True


def parse_events(body: bytes, max_events: int) -> Events | None:
    """(event type, payload text) pairs when ``body`` is a plain valid events
    body, else None (the route then answers, with its exact error if any)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("stream") is not None:
        return None
    items = doc.get("events")
    if len(doc) != ("stream" in doc) + 1 or not isinstance(items, list):
        return None
    if not 1 <= len(items) <= max_events:
        return None
    events: Events = []
    append, dumps, known = events.append, orjson.dumps, _known_names
    for item in items:
        if type(item) is not dict or len(item) != 2:
            return None
        name = item.get("eventType")
        payload = item.get("payload")
        if type(name) is not str or (name not in known and not _valid_name(name)):
            return None
        if type(payload) is not str:
            if type(payload) is not dict and type(payload) is not list:
                return None
            try:
                payload = dumps(payload).decode()
            except orjson.JSONEncodeError:
                return None  # past orjson's depth: the route's stdlib fallback
        append((name, payload))
    return events


def _json_body(scope: Scope) -> bool:
    """A body FastAPI would read as JSON (no Content-Type, or ``application/json``
    or ``application/*+json``) with no Content-Encoding left (``api.middleware.body``
    decodes gzip before this lane)."""
    json_body, media_seen = True, False
    for name, value in scope["headers"]:
        if name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
        if name == b"content-type":
            if media_seen:
                return False
            media_seen = True
            media = value.split(b";", 1)[0].strip().lower()
            json_body = media == b"application/json" or (
                media.startswith(b"application/") and media.endswith(b"+json")
            )
    return json_body


class IngestFastPath:
    """See the module docstring. ``ingest`` is the app's ``Ingest`` (shared with
    the route); the fast lane is off when it has no asyncio client."""

    def __init__(self, app: ASGIApp, settings: Settings, ingest: Ingest) -> None:
        self.app = app
        self.settings = settings
        self.ingest = ingest

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if self.ingest.enabled and scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.fullmatch(scope["path"])
        body = scope.get(BODY)
        if (
            match is None
            or body is None
            or scope.get("query_string")
            or not authorized(scope, self.settings)
            or not _json_body(scope)
        ):
            return await self.app(scope, receive, send)
        events = parse_events(body, self.settings.max_events_per_request)
        if events is not None:
            try:
                found = await self.ingest.append_async(scope["app"].state, match.group(1), events)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.error("redis unavailable during POST %s: %s", scope["path"], exc)
                response = error_response(
                    503, "service_unavailable", "the data store is unavailable"
                )
                return await response(scope, receive, send)
            except (StreamOverBudget, StoreFull) as exc:  # back-pressure, as the route
                return await api_error_response(exc)(scope, receive, send)
            if found is not None:
                await send({"type": "http.response.start", "status": 202, "headers": _HEADERS})
                await send({"type": "http.response.body", "body": b"{}"})
                return
        await self.app(scope, receive, send)  # the route answers (404, 422, ...)
