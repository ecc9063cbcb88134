"""Stream authentication, as Svix's ``authentication`` API: stream portal tokens
(mint, log out, expire all) and sink poller tokens (get, rotate); and
``whoami``, what the calling token itself may do (streamsink's own).

Minting and managing tokens takes the admin token; a portal token may only end
itself (``stream-logout``), learn about itself (``whoami``) and, unless
read-only, read its stream's poller tokens (``api.scopes``). Tokens are stored
hashed (``storage.tokens``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import redis
from fastapi import APIRouter, Body, Request, Response
from pydantic import Field

from streamsink.api.deps import RedisDep, SettingsDep
from streamsink.api.models import HttpErrorOut
from streamsink.api.params import SinkIdPath, StreamIdPath, ms_to_dt
from streamsink.api.responses import ERRORS, Responses
from streamsink.api.scopes import request_grant
from streamsink.api.wire import WireModel
from streamsink.auth_token import token_secret
from streamsink.errors import Conflict, Forbidden
from streamsink.settings import Settings
from streamsink.storage import sinks as store_sinks
from streamsink.storage import streams as store_streams
from streamsink.storage import tokens
from streamsink.storage.base import now_ms

router = APIRouter(prefix="/auth", tags=["Authentication"])

PORTAL_EXPIRY_DEFAULT = 7 * 86400  # Svix: 7 days
PORTAL_EXPIRY_MAX = 7 * 86400
POLLER_EXPIRY_MAX = 365 * 86400  # Svix: 1 year
OLD_TOKEN_EXPIRY_DEFAULT = 300  # Svix: 5 minutes
OLD_TOKEN_EXPIRY_MAX = 86400
FORBIDDEN: Responses = {403: {"model": HttpErrorOut, "description": "Forbidden"}}
MAX_ITEMS = 100
SessionId = Annotated[str, Field(min_length=1, max_length=256)]


class StreamPortalAccessIn(WireModel):
    """Svix's ``StreamPortalAccessIn``; ``readOnly`` as in its app portal access."""

    expiry: int | None = Field(
        default=None,
        ge=1,
        le=PORTAL_EXPIRY_MAX,
        description="seconds the token is valid; default and at most 7 days",
    )
    read_only: bool | None = Field(default=None, description="the token can not write")
    session_id: SessionId | None = Field(
        default=None, description="expire-all can end this session's tokens only"
    )
    feature_flags: list[Annotated[str, Field(max_length=256)]] | None = Field(
        default=None, max_length=MAX_ITEMS
    )


class AppPortalAccessOut(WireModel):
    url: str = Field(description="the portal page of the stream; the token is in its fragment")
    token: str


class StreamTokenExpireIn(WireModel):
    expiry: int | None = Field(
        default=None,
        ge=0,
        le=PORTAL_EXPIRY_MAX,
        description="seconds until the tokens expire; default 0: now",
    )
    session_ids: list[SessionId] | None = Field(
        default=None, max_length=MAX_ITEMS, description="only tokens of these sessions"
    )


class RotatePollerTokenIn(WireModel):
    expiry: int | None = Field(
        default=None,
        ge=1,
        le=POLLER_EXPIRY_MAX,
        description="seconds the new token is valid; default: until rotated",
    )
    old_token_expiry: int | None = Field(
        default=None,
        ge=0,
        le=OLD_TOKEN_EXPIRY_MAX,
        description="seconds the previous token keeps working; default 300, 0: ended now",
    )


class ApiTokenOut(WireModel):
    id: str
    token: str
    name: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    scopes: list[str] | None = None


class TokenInfoOut(WireModel):
    """The calling token: what it reaches and whether it may write there."""

    kind: str = Field(description="`admin`, `portal` (stream portal token) or `poller`")
    stream_id: str | None = Field(default=None, description="the one stream it reaches")
    sink_id: str | None = Field(default=None, description="poller tokens: the one sink it reads")
    read_only: bool = Field(description="true: every write is refused (403), the portal hides them")
    session_id: str | None = None
    feature_flags: list[str] = Field(default_factory=list)
    expires_at: datetime | None = None


#: On answers that carry a token: no cache keeps them, nor the Idempotency-Key
#: store (``api.middleware.idempotency``): a token lives in Redis only hashed.
NO_STORE = {"Cache-Control": "no-store"}


def _base_url(request: Request, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return str(request.base_url).rstrip("/")


@router.post(
    "/stream-portal-access/{stream_id}",
    operation_id="v1.authentication.stream-portal-access",
    response_model=AppPortalAccessOut,
    responses={**ERRORS, **FORBIDDEN},
)
def stream_portal_access(
    stream_id: StreamIdPath,
    request: Request,
    response: Response,
    client: RedisDep,
    settings: SettingsDep,
    body: Annotated[StreamPortalAccessIn | None, Body()] = None,
) -> AppPortalAccessOut:
    """A portal token for the stream and the portal URL that carries it
    (``{STREAMSINK_PUBLIC_URL or this server}/portal/{stream_id}#key={token}``)."""
    body = body or StreamPortalAccessIn()
    sid = store_streams.require_stream(client, stream_id).id
    token, _ = tokens.mint_portal(
        client,
        sid,
        expiry_secs=body.expiry or PORTAL_EXPIRY_DEFAULT,
        read_only=bool(body.read_only),
        session_id=body.session_id,
        feature_flags=list(body.feature_flags or ()),
        now_ms=now_ms(),
    )
    url = f"{_base_url(request, settings)}/portal/{sid}#key={token}"
    response.headers.update(NO_STORE)
    return AppPortalAccessOut(url=url, token=token)


@router.get(
    "/whoami",
    operation_id="v1.authentication.whoami",
    response_model=TokenInfoOut,
    responses=ERRORS,
)
def whoami(request: Request) -> TokenInfoOut:
    """What the token of this request is and may do (the portal asks it to hide
    the writes of a read-only token). It tells about itself only: any live token
    may call it; a poller token is read-only (it reads its sink's events)."""
    grant = request_grant(request)
    if grant is None:
        return TokenInfoOut(kind="admin", read_only=False)
    return TokenInfoOut(
        kind=grant.kind,
        stream_id=grant.stream_id,
        sink_id=grant.sink_id,
        read_only=grant.read_only or grant.kind == tokens.POLLER,
        session_id=grant.session_id,
        feature_flags=list(grant.feature_flags),
        expires_at=ms_to_dt(grant.expires_at) if grant.expires_at else None,
    )


@router.post(
    "/stream-logout",
    status_code=204,
    operation_id="v1.authentication.stream-logout",
    responses={**ERRORS, **FORBIDDEN},
)
def stream_logout(request: Request, client: RedisDep) -> Response:
    """End the stream portal token this request carries."""
    grant = request_grant(request)
    if grant is None or grant.kind != tokens.PORTAL:
        raise Forbidden(
            "stream-logout ends the stream portal token it is called with;"
            " this request carries another kind of token"
        )
    tokens.logout(client, grant)
    return Response(status_code=204)


@router.post(
    "/stream/{stream_id}/expire-all",
    status_code=204,
    operation_id="v1.authentication.stream-expire-all",
    responses={**ERRORS, **FORBIDDEN},
)
def stream_expire_all(
    stream_id: StreamIdPath,
    client: RedisDep,
    body: Annotated[StreamTokenExpireIn | None, Body()] = None,
) -> Response:
    """Expire the stream's portal tokens (of ``sessionIds`` only, when given) in
    ``expiry`` seconds, or now."""
    body = body or StreamTokenExpireIn()
    sid = store_streams.require_stream(client, stream_id).id
    tokens.expire_all(
        client, sid, expiry_secs=body.expiry or 0, session_ids=body.session_ids, now_ms=now_ms()
    )
    return Response(status_code=204)


def _secret(request: Request) -> bytes:
    state = request.app.state
    secret = getattr(state, "token_secret", None)
    if secret is None:
        secret = state.token_secret = token_secret(state.settings)
    return secret


def _token_out(token: tokens.PollerToken) -> ApiTokenOut:
    return ApiTokenOut(
        id=token.id,
        token=token.token,
        created_at=ms_to_dt(token.created_at),
        expires_at=ms_to_dt(token.expires_at) if token.expires_at else None,
    )


POLLER = "/stream/{stream_id}/sink/{sink_id}/poller/token"


def _poller_sink(client: redis.Redis, stream_id: str, sink_id: str) -> tuple[str, str]:
    """(stream id, sink id) of a ``poller`` sink; 409 ``not_a_poller_sink`` naming
    the sink's type for another type (a poller token reads a poller sink's events)."""
    sid = store_streams.require_stream(client, stream_id).id
    sink = store_sinks.require_stream_sink(client, sid, sink_id)
    if not sink.polled:
        raise Conflict(
            f"sink {sink.id} is an {sink.type!r} sink: poller tokens are for sinks of type"
            " 'poller' (their consumer reads GET .../sink/{sink_id}/events); create the"
            ' sink with "type": "poller" to read it with a poller token',
            code="not_a_poller_sink",
        )
    return sid, sink.id


@router.get(
    POLLER,
    operation_id="v1.authentication.get-stream-poller-token",
    response_model=ApiTokenOut,
    responses={**ERRORS, **FORBIDDEN},
)
def get_stream_poller_token(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    request: Request,
    response: Response,
    client: RedisDep,
) -> ApiTokenOut:
    """The sink's current poller token (``sk_poll_``, issued on first call): it
    reads that sink (``GET .../sink/{sink_id}`` and ``.../events``) and nothing else."""
    sid, sink = _poller_sink(client, stream_id, sink_id)
    secret = _secret(request)
    response.headers.update(NO_STORE)
    return _token_out(tokens.current_poller_token(client, secret, sid, sink, now_ms()))


@router.post(
    POLLER + "/rotate",
    operation_id="v1.authentication.rotate-stream-poller-token",
    response_model=ApiTokenOut,
    responses={**ERRORS, **FORBIDDEN},
)
def rotate_stream_poller_token(
    stream_id: StreamIdPath,
    sink_id: SinkIdPath,
    request: Request,
    response: Response,
    client: RedisDep,
    body: Annotated[RotatePollerTokenIn | None, Body()] = None,
) -> ApiTokenOut:
    """Issue a new poller token; the previous one keeps working ``oldTokenExpiry``
    seconds (default 300; 0 ends it now)."""
    body = body or RotatePollerTokenIn()
    sid, sink = _poller_sink(client, stream_id, sink_id)
    old_expiry = (
        OLD_TOKEN_EXPIRY_DEFAULT if body.old_token_expiry is None else body.old_token_expiry
    )
    token = tokens.rotate_poller_token(
        client,
        _secret(request),
        sid,
        sink,
        expiry_secs=body.expiry,
        old_token_expiry_secs=old_expiry,
        now_ms=now_ms(),
    )
    response.headers.update(NO_STORE)
    return _token_out(token)
