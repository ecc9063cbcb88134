"""``api.httpserver.CoalescingTransport``: writes made in one turn of the event
loop reach the socket as one write at its end, in order; closing writes what
is held first (uvicorn writes a response's head and body separately)."""

from __future__ import annotations

import asyncio
from typing import Any

from streamsink.api.httpserver import CoalescingTransport


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_turn_leave_in_one_write_in_order() -> None:
    async def run() -> list[tuple[str, Any]]:
        raw = Recorder()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"HTTP/1.1 202 Accepted\r\n\r\n")
        t.write(memoryview(b"{}"))
        assert raw.calls == []  # held until the end of this turn
        await asyncio.sleep(0)
        t.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        assert t.get_extra_info("peername") == "info:peername"  # the rest: the transport's
        return raw.calls

    assert asyncio.run(run()) == [
        ("write", b"HTTP/1.1 202 Accepted\r\n\r\n{}"),
        ("write", b"ab"),
    ]


def test_close_writes_what_is_held_first_and_nothing_after() -> None:
    async def run() -> list[tuple[str, Any]]:
        raw = Recorder()
        t = CoalescingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        t.write(b"head")
        t.write(b"body")
        t.close()
        t.write(b"late")
        await asyncio.sleep(0)
        return raw.calls

    assert asyncio.run(run()) == [("write", b"headbody"), ("close", None)]
