"""Starting V8 in this process: its flags, mini-racer's loop thread, and the
first context (created under a lock); the direct call path of the worker."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from contextlib import ExitStack, suppress
from typing import Any

from py_mini_racer import JSTimeoutException, MiniRacer, mini_racer

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
#: A young generation of at most 2 MB a semi-space (V8's default grows to 16):
#: a warm isolate's heap is ~8 MB instead of ~22 and the worker's RSS swings
#: less under load, for the same CPU per batch (100 and 1,000 events).
V8_FLAGS = ("--no-compilation-cache", "--max-semi-space-size=2")


def _init_v8() -> None:
    from py_mini_racer import init_mini_racer
    from py_mini_racer._dll import DEFAULT_V8_FLAGS

    init_mini_racer(flags=(*DEFAULT_V8_FLAGS, *V8_FLAGS), ignore_duplicate_init=True)


#: How long a timed-out call may take to report its termination (then it is left).
_CANCEL_GRACE_SEC = 5.0

SyncEval = Callable[[str, float], Any]


def sync_evaluator(racer: MiniRacer) -> SyncEval | None:
    """``eval(code, timeout_sec)`` on ``racer`` without mini-racer's loop thread.

    ``MiniRacer.eval`` from a plain thread hands the call to the asyncio loop
    thread, which starts the V8 task; V8's thread hands the result back to the
    loop, which hands it to the caller: ~100 µs of CPU per call. Here the
    caller starts the task itself and waits on the context's result queue (the
    one mini-racer's synchronous calls use, fed straight from V8's thread):
    one hand-off. A call past ``timeout_sec`` is cancelled (V8 terminates it)
    and raises ``JSTimeoutException``, as ``MiniRacer.eval`` does; errors,
    memory-limit kills included, are converted by mini-racer as usual.

    The queue carries no call ids, so calls on one context must be serialised
    (the runtime's per-isolate lock does it) and a context whose call timed out
    or was interrupted must not be used again (its late answer could be read as
    the next call's; the runtime throws it away). ``None`` when this mini-racer
    lacks the internals (then the caller uses ``MiniRacer.eval``).
    """
    try:
        ctx = racer._ctx  # noqa: SLF001
        dll, raw_ctx = ctx._dll, ctx._ctx  # noqa: SLF001
        results: queue.Queue[Any] = ctx._non_cancelable_mr_task_results_queue  # noqa: SLF001
        to_handle = ctx._python_to_value_handle  # noqa: SLF001
        to_python = ctx._value_handle_to_python  # noqa: SLF001
        start, cancel = dll.mr_eval, dll.mr_cancel_task
    except AttributeError:  # pragma: no cover - another mini-racer version
        return None
    if not isinstance(results, queue.Queue):  # pragma: no cover
        return None

    def run(code: str, timeout_sec: float) -> Any:
        code_handle = to_handle(code)
        task = start(raw_ctx, code_handle.raw, 0)
        try:
            result = results.get(timeout=timeout_sec)
        except queue.Empty:
            cancel(raw_ctx, task)
            with suppress(queue.Empty):  # the terminated task still reports: take it
                results.get(timeout=_CANCEL_GRACE_SEC)
            raise JSTimeoutException from None
        except BaseException:  # interrupted (e.g. a job time-out signal): stop the task
            cancel(raw_ctx, task)
            raise
        finally:
            del code_handle
        return to_python(result)

    return run
