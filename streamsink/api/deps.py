"""FastAPI dependencies shared by every router.

The app keeps its ``Settings`` in ``app.state.settings`` and its redis-py client
in ``app.state.redis`` (set by ``create_app``).
"""

from __future__ import annotations

import hmac
from typing import Annotated

import redis
from fastapi import Depends, Request

from streamsink.errors import AuthenticationFailed
from streamsink.settings import Settings


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


def require_token(request: Request) -> None:
    """401 ``authentication_failed`` unless ``Authorization: Bearer <token>`` matches."""
    settings: Settings = request.app.state.settings
    presented = bearer_token(request.headers.get("authorization", ""))
    if not presented:
        raise AuthenticationFailed("missing bearer token in the Authorization header")
    if not token_matches(presented, settings.tokens()):
        raise AuthenticationFailed("invalid bearer token")


SettingsDep = Annotated[Settings, Depends(get_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
