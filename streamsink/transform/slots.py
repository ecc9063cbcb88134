"""How many handlers one API process runs at once (``simulate``).

Each run may fill a V8 heap of ``STREAMSINK_JS_MEMORY_MB`` and take
``STREAMSINK_JS_TIMEOUT_MS`` of wall-clock time: without a cap, parallel calls
multiply the memory (16 allocation loops took an API to 3.1 GB) and share the
cores until every one times out instead of meeting its memory limit. Past
``STREAMSINK_SIMULATE_CONCURRENCY`` runs the caller answers 429 at once.
"""

from __future__ import annotations

import threading


class HandlerSlots:
    """A counting semaphore that also tells how many slots are taken."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._taken = 0

    def try_acquire(self) -> bool:
        with self._lock:
            if self._taken >= self.limit:
                return False
            self._taken += 1
            return True

    def release(self) -> None:
        with self._lock:
            if self._taken > 0:
                self._taken -= 1

    def taken(self) -> int:
        with self._lock:
            return self._taken


_slots: dict[int, HandlerSlots] = {}
_slots_lock = threading.Lock()


def api_slots(limit: int) -> HandlerSlots:
    """The process-wide slots for ``limit`` (one per distinct setting, so apps
    with different settings in one process, as in tests, keep their own)."""
    with _slots_lock:
        slots = _slots.get(limit)
        if slots is None:
            slots = _slots[limit] = HandlerSlots(limit)
        return slots
