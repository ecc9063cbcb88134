"""The request deadline: inside ``request_deadline(seconds)``, every socket wait
of the delivery transport (connect, TLS, pool, read, write) ends at the
deadline at the latest, so a receiver that drips its answer a byte at a time
(each read beating the read timeout) still ends in a timeout."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("streamsink_request_deadline", default=None)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[None]:
    """Bound all socket I/O of this thread's request(s) to ``seconds`` from now."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def bounded(timeout: float | None, exc: type[Exception]) -> float | None:
    """``timeout`` cut to the time left before the deadline; raises ``exc``
    ("request deadline exceeded") once it has passed."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("request deadline exceeded")
    return left if timeout is None else min(timeout, left)
