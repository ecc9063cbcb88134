"""The direct V8 call path (``v8.sync_evaluator``): the worker's calls skip
mini-racer's loop thread, and every call still gets its own result, its time
limit and its memory limit."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import pytest

from streamsink.errors import HandlerMemoryExceeded, HandlerTimeout
from streamsink.transform import v8
from streamsink.transform.handler_input import build_input_json
from streamsink.transform.runtime import JsRuntime

ECHO = "function handler(input) { return input.events.map(e => e.payload.n); }"
SLOW_ON_NEGATIVE = (
    "function handler(input) { const n = input.events[0].payload.n;"
    " if (n < 0) { for (;;) {} } return [n]; }"
)
HUNGRY_ON_NEGATIVE = (
    "function handler(input) { const n = input.events[0].payload.n; const a = [];"
    " if (n < 0) { for (;;) a.push(new Array(1e6).fill(1)); } return [n]; }"
)


def _input(*ns: int) -> str:
    return build_input_json([{"eventType": "t", "payload": f'{{"n": {n}}}'} for n in ns])


@pytest.fixture
def rt() -> Iterator[JsRuntime]:
    runtime = JsRuntime(timeout_ms=2000, memory_mb=64, cache_size=8)
    yield runtime
    runtime.close()


def test_calls_do_not_cross_the_loop_thread(rt: JsRuntime, monkeypatch) -> None:
    """mini-racer's ``eval`` (loop-thread hand-offs) is not on the call path."""
    assert rt.run_json("s", ECHO, _input(1)) == [1]

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("MiniRacer.eval called")

    monkeypatch.setattr(v8.MiniRacer, "eval", refuse)
    assert rt.run_json("s", ECHO, _input(2, 3)) == [2, 3]


def test_threads_on_shared_and_separate_isolates_get_their_own_results(rt: JsRuntime) -> None:
    errors: list[str] = []

    def worker(t: int) -> None:
        sink = f"sink_{t % 2}"  # two threads per isolate
        for i in range(60):
            n = t * 1000 + i
            got = rt.run_json(sink, ECHO, _input(n, n + 1))
            if got != [n, n + 1]:
                errors.append(f"thread {t} call {i}: {got!r}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not any(th.is_alive() for th in threads)
    assert errors == []


@pytest.mark.parametrize(
    ("code", "exc"),
    [(SLOW_ON_NEGATIVE, HandlerTimeout), (HUNGRY_ON_NEGATIVE, HandlerMemoryExceeded)],
)
def test_after_a_killed_call_the_next_one_gets_its_own_result(
    rt: JsRuntime, code: str, exc: type[Exception]
) -> None:
    assert rt.run_json("s", code, _input(1)) == [1]
    with pytest.raises(exc):
        rt.run_json("s", code, _input(-1))
    for n in (2, 3):  # nothing left over from the killed call answers these
        assert rt.run_json("s", code, _input(n)) == [n]


class _Interrupted(Exception):
    pass


def test_an_interrupted_call_leaves_no_answer_for_the_next(rt: JsRuntime) -> None:
    """A signal handler raising in the caller (RQ's job time-out does) stops the
    wait; the late answer of that call must not become the next call's result."""
    code = (
        "function handler(input) { const n = input.events[0].payload.n;"
        " if (n < 0) { const end = Date.now() + 400; while (Date.now() < end) {} } return [n]; }"
    )
    assert rt.run_json("s", code, _input(1)) == [1]

    def interrupt(signum: int, frame: object) -> None:
        raise _Interrupted

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(_Interrupted):
            rt.run_json("s", code, _input(-1))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    time.sleep(0.5)  # the interrupted call would have answered by now
    assert rt.run_json("s", code, _input(5)) == [5]
    assert rt.run_json("s", code, _input(6)) == [6]
