"""The API token when none is configured, and the secret that derives poller
tokens (``storage.tokens``): each generated once, kept in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from streamsink.settings import Settings
from streamsink.storage.connection import private_data_dir

TOKEN_FILE = "auth-token"
#: Starts like TOKEN_FILE, so ``private_data_dir`` keeps its mode 0600 too.
SECRET_FILE = "auth-token-secret"


def ensure_token(settings: Settings) -> tuple[Settings, bool]:
    """Return settings with ``auth_token`` set, and whether it came from the data dir.

    A configured ``STREAMSINK_AUTH_TOKEN`` wins. Otherwise the token in
    ``DATA_DIR/auth-token`` is used, created (mode 0600, in a 0700 directory)
    on first start; an existing file's modes are fixed the same way.
    """
    if settings.tokens():
        return settings, False
    path = Path(settings.data_dir) / TOKEN_FILE
    private_data_dir(path.parent)
    if path.exists():
        token = path.read_text().strip()
    else:
        token = "sk_" + secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
    return settings.model_copy(update={"auth_token": token}), True


def token_hint(token: str) -> str:
    """The start of ``token``, enough to tell tokens apart, never most of it."""
    return token[: min(6, len(token) // 4)] + "…"


def token_secret(settings: Settings) -> bytes:
    """The key that derives poller tokens: ``STREAMSINK_TOKEN_SECRET``, else
    ``DATA_DIR/auth-token-secret`` (mode 0600, 0700 directory), created once.

    It is kept out of Redis on purpose: Redis holds the tokens' hashes and
    generations, and with the key a copy of Redis would give the tokens. API
    processes that share no data dir (several machines) need one value set."""
    if settings.token_secret:
        return settings.token_secret.encode()
    path = Path(settings.data_dir) / SECRET_FILE
    private_data_dir(path.parent)
    if not path.exists():
        # Written whole under a unique name, then linked: a process starting at the
        # same time finds either no file or the whole one, and one secret wins.
        tmp = path.with_name(f"{SECRET_FILE}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()
