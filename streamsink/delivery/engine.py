"""The per-process delivery engine: what a worker keeps between jobs.

One ``Engine`` per worker process holds the Redis client, the V8 runtime
(cached contexts), the pooled HTTP client, the retry policy, the leases
this process holds (renewed by the worker's housekeeping thread) and when
its sinks last delivered. There is no
process-wide engine: ``streamsink worker`` (``delivery.worker``) creates it
and passes it down to each job, batch and sink kind.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import redis

from streamsink.delivery.retry import RetrySchedule
from streamsink.delivery.scheduling import Lease
from streamsink.settings import Settings
from streamsink.sinkhttp.client import DeliveryClient
from streamsink.sinkhttp.netguard import DestinationPolicy
from streamsink.storage.trace_memory import TraceMemory
from streamsink.transform.runtime import JsRuntime


class LeaseRegistry:
    """The leases this process holds, renewed together with their sinks' kick
    flags (so neither expires while a batch takes long, and both expire soon
    after a crash)."""

    def __init__(self) -> None:
        self._leases: set[Lease] = set()
        self._lock = threading.Lock()

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._leases.add(lease)

    def discard(self, lease: Lease) -> None:
        with self._lock:
            self._leases.discard(lease)

    def renew_all(self) -> None:
        with self._lock:
            held = list(self._leases)
        for lease in held:
            lease.keep_alive()


class RecentBatches:
    """When each sink last delivered a batch in this process (the latest
    ``cap`` sinks): whether one delivers steadily, for lingering
    (``job._linger``): a sink of one batch now and then (a platform's many
    quiet streams) ends its job at once instead of holding a thread."""

    def __init__(self, cap: int = 10_000) -> None:
        self.cap = cap
        self._last: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def steady(self, sink_id: str, within: float) -> bool:
        """Note a batch of ``sink_id`` now; whether its previous one was at
        most ``within`` seconds ago."""
        now = time.monotonic()
        with self._lock:
            previous = self._last.pop(sink_id, None)
            self._last[sink_id] = now
            if len(self._last) > self.cap:
                self._last.popitem(last=False)
        return previous is not None and now - previous <= within


class Engine:
    def __init__(self, connection: redis.Redis, settings: Settings):
        self.redis = connection
        self.settings = settings
        self.runtime = JsRuntime(
            timeout_ms=settings.js_timeout_ms,
            memory_mb=settings.js_memory_mb,
            cache_size=settings.js_context_cache,
            max_output_bytes=settings.js_max_output_bytes,
        )
        # Start V8 here, in one thread: the first isolates created concurrently
        # by delivery threads abort the process ("Check failed:
        # !IsConfigurablePoolInitialized()" in V8's allocator set-up).
        self.runtime.run_once(None, '{"events": []}')
        self.client = DeliveryClient(
            connect_timeout=settings.delivery_connect_timeout,
            read_timeout=settings.delivery_read_timeout,
            total_timeout=settings.delivery_total_timeout,
            max_retry_after=settings.delivery_max_retry_after,
            policy=DestinationPolicy(block_private=settings.block_private_destinations),
        )
        self.retry = RetrySchedule.parse(
            settings.retry_schedule,
            max_retry_after=settings.delivery_max_retry_after,
            max_elapsed=settings.retry_max_elapsed,
        )
        self.traces = TraceMemory(
            connection, settings.trace_memory_secs, settings.trace_memory_max_entries
        )
        self.leases = LeaseRegistry()
        self.recent = RecentBatches()
        #: Set when the process shuts down: deliveries end after their batch.
        self.stopping = threading.Event()

    def close(self) -> None:
        self.client.close()
        self.runtime.close()
