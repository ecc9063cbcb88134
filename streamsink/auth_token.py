"""The API token when none is configured: generated once, kept in the data dir."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from streamsink.settings import Settings
from streamsink.storage.connection import private_data_dir

TOKEN_FILE = "auth-token"


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
