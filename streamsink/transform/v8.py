"""Starting V8 in this process: its flags, mini-racer's loop thread, and the
first context (created under a lock)."""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack

from py_mini_racer import MiniRacer, mini_racer

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    """One private asyncio loop thread shared by all isolates (mini-racer needs one).

    Every call crosses it twice (start, then V8's result): with uvloop that
    costs ~100 µs of CPU per call instead of ~170 with asyncio's own loop."""
    global _loop
    with _loop_lock:
        if _loop is None:
            try:
                import uvloop

                loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
                loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="streamsink-v8", daemon=True).start()
            _loop = loop
        return _loop


_v8_started = False
_v8_lock = threading.Lock()


def enter_racer(stack: ExitStack) -> MiniRacer:
    """A new mini-racer context entered on ``stack``. The first one is created
    under a lock: V8 aborts the process ("Check failed:
    !IsConfigurablePoolInitialized()") when two threads create the first
    isolates at once (e.g. check_code and simulate in the API's thread pool)."""
    global _v8_started
    if _v8_started:
        return stack.enter_context(mini_racer(_event_loop()))
    with _v8_lock:
        _init_v8()
        racer = stack.enter_context(mini_racer(_event_loop()))
        _v8_started = True
    return racer


#: Each batch is a new script (its input is a literal in the source): a compilation
#: cache only keeps dead sources alive (~50 KB a batch, hundreds of MB per isolate).
V8_FLAGS = ("--no-compilation-cache",)


def _init_v8() -> None:
    from py_mini_racer import init_mini_racer
    from py_mini_racer._dll import DEFAULT_V8_FLAGS

    init_mini_racer(flags=(*DEFAULT_V8_FLAGS, *V8_FLAGS), ignore_duplicate_init=True)
