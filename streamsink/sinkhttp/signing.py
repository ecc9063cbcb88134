"""Standard Webhooks signatures of ``http`` sink requests (pure: no I/O).

A request carries ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` and the same values under the ``svix-*`` names, so
``svix.webhooks.Webhook(secret).verify(body, headers)`` (or any Standard
Webhooks library) accepts it. The signature is
``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`` keyed by the secret's
bytes (base64 after ``whsec_``); during a rotation's grace period the old secret
signs too, as a second space-separated ``v1,`` signature.

A request's id is derived from the sink and the events it carries (its batch's
first and last event ids, and for a part of a split batch, which part): the
retries of a batch send the same id, so receivers can drop duplicates, while a
batch that grew (more events arrived while it was being retried) or another
part of a split batch gets another id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
NEW_SECRET_BYTES = 32
#: Header names set on every request (both spellings), over any sink header.
SIGNATURE_HEADERS = (
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
)


def new_secret() -> str:
    """A fresh random ``whsec_`` secret (32 bytes)."""
    return PREFIX + base64.b64encode(secrets.token_bytes(NEW_SECRET_BYTES)).decode("ascii")


def check_secret(key: str) -> str:
    """``key`` when it is ``whsec_`` + standard base64 of 24..64 bytes; else
    ``ValueError`` saying what is wrong (without echoing the key)."""
    if not isinstance(key, str) or not key.startswith(PREFIX):
        raise ValueError(f"key must start with {PREFIX!r} followed by base64 (e.g. whsec_MfKQ...)")
    try:
        raw = base64.b64decode(key[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"key: the part after {PREFIX!r} is not valid base64") from None
    if not MIN_SECRET_BYTES <= len(raw) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"key: the secret is {len(raw)} bytes; it must be {MIN_SECRET_BYTES} to"
            f" {MAX_SECRET_BYTES} bytes (base64 after {PREFIX!r})"
        )
    return key


def secret_bytes(key: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret."""
    return base64.b64decode(key.removeprefix(PREFIX))


def signature(key: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of ``{msg_id}.{timestamp}.{body}``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(key), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    keys: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The six signature headers of one request, signed with every key in ``keys``."""
    signed = " ".join(signature(k, msg_id, timestamp, body) for k in keys)
    ts = str(timestamp)
    return {
        "svix-id": msg_id,
        "svix-timestamp": ts,
        "svix-signature": signed,
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": signed,
    }


def message_id(sink_id: str, first: str, last: str, part: range | None = None) -> str:
    """The id of a request carrying events ``first``..``last`` of ``sink_id``;
    ``part``: the items of a split batch the request carries."""
    text = f"{sink_id}\x00{first}\x00{last}"
    if part is not None:
        text += f"\x00{part.start}-{part.stop}"
    return "msg_" + hashlib.sha256(text.encode()).hexdigest()[:32]
