"""What a scoped token may reach: one rule, by the matched route's path
template, its path parameters and the method (never by the raw URL).

Stream portal tokens (``sk_portal_``) reach their stream:

- every route under ``/api/v1/stream/{stream_id}`` whose ``{stream_id}`` names
  their stream, for reading (GET);
- writes to the stream itself (PUT, PATCH; never DELETE) and to anything under
  ``.../{stream_id}/sink`` (its sinks, whatever routes they grow), unless the
  token is read-only; no other write (posting events is the platform's);
- the event types (GET only), the simulate endpoint (POST, even read-only: it
  writes nothing), ``POST /auth/stream-logout`` (ending themselves),
  ``GET /auth/whoami`` (what they themselves may do) and, unless
  read-only, ``GET /auth/stream/{stream_id}/sink/{sink_id}/poller/token`` of
  their stream's sinks.

Poller tokens (``sk_poll_``) read their own sink: ``GET .../sink/{sink_id}`` and
``GET .../sink/{sink_id}/events``, with ``{stream_id}`` and ``{sink_id}`` naming it,
and ``GET /auth/whoami``.

Everything else (a route with no ``{stream_id}`` that is not listed above,
another stream, minting tokens, ops, the local receiver's API) is 403
``forbidden`` saying why. A route added later falls under this rule by its
template and method: nothing here lists the stream's or sink's routes one by one.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from fastapi import Request
from starlette.types import Scope

from streamsink.errors import AuthenticationFailed, Forbidden
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams
from streamsink.storage import tokens
from streamsink.storage.base import now_ms
from streamsink.storage.tokens import Grant

API = "/api/v1"
STREAM = API + "/stream/{stream_id}"
SINKS = STREAM + "/sink"
SINK = SINKS + "/{sink_id}"
POLLER_TOKEN = API + "/auth/stream/{stream_id}/sink/{sink_id}/poller/token"
LOGOUT = API + "/auth/stream-logout"
WHOAMI = API + "/auth/whoami"
EVENT_TYPES = API + "/stream/event-type"
READ = frozenset({"GET", "HEAD"})

#: Routes with no ``{stream_id}`` open to every portal token: (method, template);
#: event types are open to reading too (any route under ``EVENT_TYPES``).
PORTAL_LISTED = frozenset(
    {
        ("POST", API + "/stream/transformations/simulate"),
        ("POST", LOGOUT),
        ("GET", WHOAMI),
    }
)
#: What a poller token may read (with its own stream and sink in the path).
POLLER_ROUTES = frozenset({SINK, SINK + "/events"})

GRANT = "streamsink.grant"  #: scope key: the request's ``Grant`` (scoped tokens only)


class Need(Enum):
    """What the path must name for an allowed route."""

    NOTHING = "nothing"  # a listed route
    STREAM = "stream"  # {stream_id} is the token's stream
    SINK = "sink"  # ... and {sink_id} the token's sink


def route_template(scope: Scope) -> str | None:
    """The matched route's full path template (``/api/v1/stream/{stream_id}``).

    Recent FastAPI (0.165 here) no longer copies an included router's routes:
    the route in ``scope["route"]`` keeps its own path, the prefixed one is in
    the effective route context. Older FastAPI copies routes with the full path.
    Anything else yields a template no rule knows, so the route is refused."""
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None)
    if template is None:
        template = getattr(scope.get("route"), "path_format", None)
    return template


def _under(template: str, base: str) -> bool:
    return template == base or template.startswith(base + "/")


def rule(grant: Grant, method: str, template: str | None) -> Need:
    """What ``grant`` needs of the path to call ``method template``; raises
    ``Forbidden`` naming why when no path would do."""
    method = method.upper()
    route = f"{method} {template}"
    if template is None:
        raise Forbidden("this route is open to the admin token only")
    if grant.kind == tokens.POLLER:
        if method in READ and template in POLLER_ROUTES:
            return Need.SINK
        if method in READ and template == WHOAMI:
            return Need.NOTHING
        raise Forbidden(
            f"a poller token reads its own sink only (GET {SINK} and GET {SINK}/events),"
            f" not {route}"
        )
    if (method, template) in PORTAL_LISTED:
        return Need.NOTHING
    if template == POLLER_TOKEN and method in READ:
        if grant.read_only:
            raise Forbidden("a read-only stream portal token can not read poller tokens")
        return Need.STREAM
    if _under(template, STREAM):
        if method in READ:
            return Need.STREAM
        if template == STREAM and method == "DELETE":
            raise Forbidden("a stream portal token can not delete its stream")
        if grant.read_only:
            raise Forbidden(f"this stream portal token is read-only: {route} writes")
        if (template == STREAM and method in ("PUT", "PATCH")) or _under(template, SINKS):
            return Need.STREAM
        raise Forbidden(
            f"a stream portal token writes its stream (PUT, PATCH) and its sinks only, not {route}"
        )
    if _under(template, API + "/auth"):
        raise Forbidden(f"a stream portal token can not mint or manage tokens ({route})")
    if method in READ and _under(template, EVENT_TYPES):
        return Need.NOTHING
    raise Forbidden(
        f"a stream portal token reaches its own stream, its sinks and events, event types"
        f" and simulate, not {route}"
    )


def _check_path(grant: Grant, need: Need, params: dict[str, Any], request: Request) -> None:
    if need is Need.NOTHING:
        return
    client = request.app.state.redis
    named = str(params.get("stream_id", ""))
    stream_id = store_streams.resolve_stream_id(client, named) if named else None
    if stream_id != grant.stream_id:
        raise Forbidden(f"this token is for stream {grant.stream_id}, not {named!r}")
    if need is Need.SINK:
        named_sink = str(params.get("sink_id", ""))
        sink_id = store_sinks.resolve_sink_id(client, stream_id, named_sink) if named_sink else None
        if sink_id != grant.sink_id:
            raise Forbidden(f"this poller token is for sink {grant.sink_id}, not {named_sink!r}")


def require_scoped(request: Request, token: str) -> Grant:
    """Let a scoped token through to the matched route or raise: 401 when the
    token is not a live one (unknown, expired, logged out), 403 when the route or
    the resource is outside its scope. Keeps the grant in ``scope[GRANT]``."""
    grant = tokens.lookup(request.app.state.redis, token, now_ms())
    if grant is None:
        raise AuthenticationFailed("invalid bearer token (unknown, expired or logged out)")
    need = rule(grant, request.method, route_template(request.scope))
    _check_path(grant, need, request.path_params, request)
    request.scope[GRANT] = grant
    return grant


def request_grant(request: Request) -> Grant | None:
    """The scoped grant of this request (None for the admin token)."""
    return request.scope.get(GRANT)
