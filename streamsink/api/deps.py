"""FastAPI dependencies shared by every router, and the request's bearer token.

The app keeps its ``Settings`` in ``app.state.settings`` and its redis-py client
in ``app.state.redis`` (set by ``create_app``).

The ``Authorization`` header is parsed once a request, by the outermost
middleware (``api.middleware.body``), into ``scope[TOKEN]``; whether the token
is accepted is worked out once, on first use, into ``scope[AUTHORIZED]``. The
auth dependency, the idempotency middleware, the ingest fast lane and the local
receiver all read them through ``scope_token`` and ``authorized``.

``authorized`` is about the admin token(s) only. Scoped tokens (stream portal,
sink poller) are checked by ``require_token`` alone, against the matched route
(``api.scopes``); the fast lane and idempotency replays are the admin token's,
so a scoped token's request always reaches its route and that check.
"""

from __future__ import annotations

import hmac
from typing import Annotated

import redis
from fastapi import Depends, Request
from starlette.types import Scope

from streamsink.api.scopes import require_scoped
from streamsink.errors import AuthenticationFailed
from streamsink.settings import Settings
from streamsink.storage.tokens import is_scoped


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_redis(request: Request) -> redis.Redis:
    return request.app.state.redis


def token_matches(presented: str, accepted: list[str]) -> bool:
    """Constant-time comparison against every accepted token (rotation)."""
    ok = False
    for token in accepted:
        ok |= hmac.compare_digest(presented.encode(), token.encode())
    return ok


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` value ("" when none)."""
    scheme, _, presented = header.partition(" ")
    return presented.strip() if scheme.lower() == "bearer" else ""


TOKEN = "streamsink.token"  #: scope key: the presented bearer token ("" when none)
AUTHORIZED = "streamsink.authorized"  #: scope key: the token is accepted (set on first use)


def parse_token(scope: Scope) -> str:
    """Parse the ``Authorization`` header into ``scope[TOKEN]`` (the one parse)."""
    token = ""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            token = bearer_token(value.decode("latin-1"))
            break
    scope[TOKEN] = token
    return token


def scope_token(scope: Scope) -> str:
    """The request's bearer token ("" when none), parsed at most once."""
    token = scope.get(TOKEN)
    return parse_token(scope) if token is None else token


def authorized(scope: Scope, settings: Settings) -> bool:
    """Whether the request carries an accepted bearer token (checked once)."""
    ok = scope.get(AUTHORIZED)
    if ok is None:
        token = scope_token(scope)
        ok = scope[AUTHORIZED] = bool(token) and token_matches(token, settings.tokens())
    return ok


def require_token(request: Request) -> None:
    """401 ``authentication_failed`` unless ``Authorization: Bearer <token>`` is an
    admin token of the settings or a live scoped token (portal, poller) whose
    scope covers the matched route (else 403 ``forbidden``: ``api.scopes``)."""
    token = scope_token(request.scope)
    if not token:
        raise AuthenticationFailed("missing bearer token in the Authorization header")
    if authorized(request.scope, request.app.state.settings):
        return
    if not is_scoped(token):
        raise AuthenticationFailed("invalid bearer token")
    require_scoped(request, token)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
