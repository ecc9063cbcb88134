"""Scoped tokens in Redis: stream portal tokens and sink poller tokens.

A token's text is never stored: Redis holds the SHA-256 of it (``keys.token``)
with what it grants, and a Redis TTL ends it when it expires (``expiresAt`` is
checked too, so a token is dead at its expiry whatever Redis does with TTLs).

- Portal tokens (``sk_portal_`` + 256 random bits) reach one stream
  (``api.scopes``); a per-stream index (``keys.portal_tokens``, SHA-256 ->
  expiry) makes expire-all cost the stream's own tokens only.
- Poller tokens (``sk_poll_``) read one sink. ``GET .../poller/token`` must hand
  out the current token again, so its text is derived rather than stored:
  ``sk_poll_ + base64url(HMAC-SHA256(secret, "poller:{sink_id}:{gen}"))``.
  Redis keeps the generation and the token's SHA-256 (``keys.poller_token``);
  the secret stays outside Redis (``auth_token.token_secret``). Rotation bumps
  the generation; the previous token keeps working for ``oldTokenExpiry``.
  A sink that stops being a ``poller`` sink loses its tokens at once
  (``stage_revoke_poller_tokens``); its record keeps the generation, so that
  turned poller again it gets the next one, never an earlier token back.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from streamsink.errors import Conflict
from streamsink.resource_ids import new_id
from streamsink.storage import keys, scripts
from streamsink.storage.base import decode_hash, dumps, loads, to_str, transaction

PORTAL_PREFIX = "sk_portal_"
POLLER_PREFIX = "sk_poll_"
PORTAL = "portal"
POLLER = "poller"
POLLER_TOKEN_ID_PREFIX = "ptok_"


def digest(token: str) -> str:
    """The SHA-256 (hex) of a token's text: all that Redis ever holds of it."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_scoped(token: str) -> bool:
    """Whether ``token`` is shaped like a portal or poller token."""
    return token.startswith((PORTAL_PREFIX, POLLER_PREFIX))


@dataclass(frozen=True)
class Grant:
    """What a live scoped token grants (``api.scopes`` decides the routes)."""

    kind: str  # PORTAL | POLLER
    digest: str
    stream_id: str
    sink_id: str | None = None  # poller tokens
    read_only: bool = False
    session_id: str | None = None
    feature_flags: tuple[str, ...] = field(default_factory=tuple)
    created_at: int = 0
    expires_at: int | None = None  # epoch ms; None: until rotated


def lookup(client: redis.Redis, token: str, now_ms: int) -> Grant | None:
    """The grant of a live token, or None (unknown, expired, logged out, or its
    sink deleted)."""
    if not is_scoped(token):
        return None
    key_digest = digest(token)
    raw = decode_hash(client.hgetall(keys.token(key_digest)))
    kind = PORTAL if token.startswith(PORTAL_PREFIX) else POLLER
    if raw.get("kind") != kind or not raw.get("streamId"):
        return None
    expires = int(raw.get("expiresAt") or 0) or None
    if expires is not None and expires <= now_ms:
        return None
    grant = Grant(
        kind=kind,
        digest=key_digest,
        stream_id=raw["streamId"],
        sink_id=raw.get("sinkId") or None,
        read_only=raw.get("readOnly") == "1",
        session_id=raw.get("sessionId") or None,
        feature_flags=tuple(loads(raw.get("featureFlags"), [])),
        created_at=int(raw.get("createdAt") or 0),
        expires_at=expires,
    )
    if kind == POLLER:
        owner, sink_type = (
            to_str(v) for v in client.hmget(keys.sink(grant.sink_id or ""), "streamId", "type")
        )
        if owner != grant.stream_id:  # the sink is gone: so are its tokens
            forget_sink(client, grant.sink_id or "", extra=[key_digest])
            return None
        if sink_type != keys.POLLER_SINK_TYPE:  # turned into another type (PUT)
            return None
    return grant


# --- portal tokens -----------------------------------------------------------------


def mint_portal(
    client: redis.Redis,
    stream_id: str,
    *,
    expiry_secs: int,
    read_only: bool,
    session_id: str | None,
    feature_flags: list[str],
    now_ms: int,
) -> tuple[str, Grant]:
    """A new portal token for ``stream_id`` (its text, shown once) and its grant."""
    token = PORTAL_PREFIX + secrets.token_urlsafe(32)
    key_digest = digest(token)
    expires = now_ms + expiry_secs * 1000
    fields = {
        "kind": PORTAL,
        "streamId": stream_id,
        "readOnly": "1" if read_only else "0",
        "sessionId": session_id or "",
        "featureFlags": dumps(feature_flags),
        "createdAt": str(now_ms),
        "expiresAt": str(expires),
    }
    pairs = [item for pair in fields.items() for item in pair]
    scripts.PORTAL_MINT(
        client,
        [keys.token(key_digest), keys.portal_tokens(stream_id)],
        [key_digest, expires, now_ms, *pairs],
    )
    grant = Grant(
        kind=PORTAL,
        digest=key_digest,
        stream_id=stream_id,
        read_only=read_only,
        session_id=session_id,
        feature_flags=tuple(feature_flags),
        created_at=now_ms,
        expires_at=expires,
    )
    return token, grant


def logout(client: redis.Redis, grant: Grant) -> None:
    """End a portal token at once."""
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.token(grant.digest))
    pipe.zrem(keys.portal_tokens(grant.stream_id), grant.digest)
    pipe.execute()


def expire_all(
    client: redis.Redis,
    stream_id: str,
    *,
    expiry_secs: int,
    session_ids: list[str] | None,
    now_ms: int,
) -> int:
    """Expire the stream's portal tokens (only those of ``session_ids`` when given)
    in ``expiry_secs`` (0: now); a token expiring sooner keeps its expiry.
    Returns how many tokens were shortened or ended."""
    args: list[str | int] = [keys.TOKEN_KEY_PREFIX, now_ms, now_ms + expiry_secs * 1000]
    args.extend(session_ids or ())
    return int(scripts.PORTAL_EXPIRE_ALL(client, [keys.portal_tokens(stream_id)], args))


# --- poller tokens -----------------------------------------------------------------


def derive_poller_token(secret: bytes, sink_id: str, generation: int) -> str:
    """The text of generation ``generation`` of the sink's poller token."""
    mac = hmac.new(secret, f"poller:{sink_id}:{generation}".encode(), hashlib.sha256).digest()
    return POLLER_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@dataclass(frozen=True)
class PollerToken:
    token: str
    id: str
    generation: int
    created_at: int
    expires_at: int | None


def current_poller_token(
    client: redis.Redis, secret: bytes, stream_id: str, sink_id: str, now_ms: int
) -> PollerToken:
    """The sink's current poller token, issued (the next generation) on first
    call and on the first call after a revocation.

    409 when the stored generation was issued under another secret (API processes
    that do not share ``STREAMSINK_TOKEN_SECRET`` or a data directory): this
    process can not re-derive it; rotating issues one under its own secret."""
    raw = decode_hash(client.hgetall(keys.poller_token(sink_id)))
    if not raw.get("hash"):  # none yet, or revoked (``stage_revoke_poller_tokens``)
        _issue(client, secret, stream_id, sink_id, now_ms, first=True)
        raw = decode_hash(client.hgetall(keys.poller_token(sink_id)))
    current = _from_record(secret, sink_id, raw)
    if not hmac.compare_digest(digest(current.token), raw.get("hash", "")):
        raise Conflict(
            f"the poller token of sink {sink_id} was issued under another token secret, so"
            " this API process can not show it: give every API process the same"
            " STREAMSINK_TOKEN_SECRET (or one data directory), or rotate the token"
            " (POST .../poller/token/rotate) to issue one under this process's secret",
            code="token_secret_mismatch",
        )
    return current


def rotate_poller_token(
    client: redis.Redis,
    secret: bytes,
    stream_id: str,
    sink_id: str,
    *,
    expiry_secs: int | None,
    old_token_expiry_secs: int,
    now_ms: int,
) -> PollerToken:
    """Issue the next generation; the previous token lives ``old_token_expiry_secs``
    more (0: ended now; one expiring sooner keeps its expiry)."""
    return _issue(
        client,
        secret,
        stream_id,
        sink_id,
        now_ms,
        expiry_secs=expiry_secs,
        old_token_expiry_secs=old_token_expiry_secs,
    )


def forget_sink(client: redis.Redis, sink_id: str, extra: list[str] | None = None) -> None:
    """Drop a deleted sink's poller record and its tokens (``extra``: digests of
    more token keys to drop)."""
    doomed = [keys.token(d) for d in extra or () if d]
    client.delete(*poller_token_keys(client, sink_id), *doomed)


def stage_revoke_poller_tokens(pipe: Pipeline, sink_id: str, token_keys: list[str]) -> None:
    """Queue the end of a sink's poller tokens (``token_keys`` from
    ``poller_token_keys``, read under WATCH of the record; ``pipe`` in MULTI):
    the tokens go, the record keeps its generation with no current token, so
    the next ``current_poller_token`` issues the next generation."""
    record_key = keys.poller_token(sink_id)
    doomed = [k for k in token_keys if k != record_key]
    if not doomed:  # never issued, or revoked already
        return
    pipe.delete(*doomed)
    pipe.hset(record_key, mapping={"hash": "", "id": "", "expiresAt": "", "oldHashes": "[]"})


def poller_token_keys(client: redis.Redis | Pipeline, sink_id: str) -> list[str]:
    """Every key of a sink's poller tokens: its record, the current token and the
    earlier ones still in their grace (``oldHashes``). Read in immediate mode:
    a deletion WATCHes the record, then queues ``DEL`` of these in its MULTI."""
    record_key = keys.poller_token(sink_id)
    current, older = (to_str(v) for v in client.hmget(record_key, "hash", "oldHashes"))
    digests = [current, *loads(older, [])]
    return [record_key, *(keys.token(d) for d in digests if d)]


def portal_token_keys(client: redis.Redis | Pipeline, stream_id: str) -> list[str]:
    """Every key of a stream's portal tokens: the index and each token it lists
    (read in immediate mode, as ``poller_token_keys``)."""
    index = keys.portal_tokens(stream_id)
    return [index, *(keys.token(to_str(d) or "") for d in client.zrange(index, 0, -1))]


def _from_record(secret: bytes, sink_id: str, raw: dict[str, str]) -> PollerToken:
    generation = int(raw["gen"])
    return PollerToken(
        token=derive_poller_token(secret, sink_id, generation),
        id=raw.get("id", ""),
        generation=generation,
        created_at=int(raw.get("createdAt") or 0),
        expires_at=int(raw.get("expiresAt") or 0) or None,
    )


def _issue(
    client: redis.Redis,
    secret: bytes,
    stream_id: str,
    sink_id: str,
    now_ms: int,
    *,
    first: bool = False,
    expiry_secs: int | None = None,
    old_token_expiry_secs: int = 0,
) -> PollerToken:
    """Write the next generation (with ``first``: only when there is no current
    token, else the existing one is returned) under WATCH of the sink's record."""
    record_key = keys.poller_token(sink_id)

    def run(pipe: Pipeline) -> PollerToken:
        raw = decode_hash(pipe.hgetall(record_key))
        if first and raw.get("hash"):  # issued meanwhile by another request
            pipe.multi()
            return _from_record(secret, sink_id, raw)
        generation = int(raw.get("gen") or 0) + 1
        token = derive_poller_token(secret, sink_id, generation)
        new_digest = digest(token)
        expires = now_ms + expiry_secs * 1000 if expiry_secs else None
        token_id = new_id(POLLER_TOKEN_ID_PREFIX)
        old_digest = raw.get("hash")
        old_key = keys.token(old_digest) if old_digest else None
        old_live = bool(old_key) and bool(pipe.exists(old_key))
        old_expires = int(raw.get("expiresAt") or 0) or None
        until = now_ms + old_token_expiry_secs * 1000
        if old_expires is not None:
            until = min(until, old_expires)
        # Earlier tokens still in their grace, so that deleting the sink ends them too.
        graced = [d for d in loads(raw.get("oldHashes"), []) if pipe.exists(keys.token(d))]
        if old_live and until > now_ms:
            graced.append(old_digest)
        pipe.multi()
        pipe.hset(
            record_key,
            mapping={
                "gen": generation,
                "id": token_id,
                "hash": new_digest,
                "createdAt": now_ms,
                "expiresAt": expires or "",
                "oldHashes": dumps(graced),
            },
        )
        pipe.hset(
            keys.token(new_digest),
            mapping={
                "kind": POLLER,
                "streamId": stream_id,
                "sinkId": sink_id,
                "gen": generation,
                "createdAt": now_ms,
                "expiresAt": expires or "",
            },
        )
        if expires:
            pipe.pexpireat(keys.token(new_digest), expires)
        if old_key and old_live:
            if until <= now_ms:
                pipe.delete(old_key)
            else:
                pipe.hset(old_key, "expiresAt", until)
                pipe.pexpireat(old_key, until)
        return PollerToken(token, token_id, generation, now_ms, expires)

    return transaction(client, run, record_key)
