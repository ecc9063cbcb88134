"""Fixtures for interop with real receivers: the engine's API and worker
fixtures (tests/engine/conftest.py), a rotel-agent subprocess, and a recording
pass-through in front of it that keeps the exact bytes streamsink sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.engine.conftest import (  # noqa: F401  (fixtures used by the tests here)
    Receiver,
    api,
    receiver,
    receiver_factory,
    workers,
)
from tests.helpers.receiver_server import Answer, ReceiverServer, Recorded
from tests.interop.rotel_agent import RotelAgent

#: Headers a pass-through must carry for the receiver to read the body as sent.
_FORWARDED = ("content-type", "content-encoding")


class RecordingProxy(ReceiverServer):
    """Records every request, forwards it unchanged to ``upstream`` and answers
    with the upstream's answer (status, body, Content-Type)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self._client = httpx.Client(timeout=10.0, trust_env=False)
        super().__init__(handler=self._forward)

    def _forward(self, recorded: Recorded) -> Answer:
        headers = {k: v for k, v in recorded.headers.items() if k in _FORWARDED}
        r = self._client.post(self.upstream, content=recorded.body, headers=headers)
        return Answer(
            r.status_code, r.content, content_type=r.headers.get("content-type") or "text/plain"
        )

    def stop(self) -> None:
        super().stop()
        self._client.close()


@pytest.fixture
def collector(
    receiver: Receiver,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> Iterator[tuple[RotelAgent, RecordingProxy]]:
    """rotel-agent exporting to ``receiver``, behind a recording pass-through."""
    agent = RotelAgent(exporter_url=receiver.url, log_dir=tmp_path).start()
    proxy = RecordingProxy(agent.traces_url).start()
    try:
        yield agent, proxy
    finally:
        proxy.stop()
        agent.stop()
        print(agent.logs())  # shown by pytest when the test failed
