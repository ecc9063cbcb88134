"""Kick, lease, wake-up and re-kick: how sinks get delivery jobs on RQ.

Per sink, three Redis keys coordinate every API and worker process:

- ``ss:kick:{sink}``  set (NX) when a delivery job is queued or running for the
  sink, so appends enqueue at most one job per idle sink. It expires
  (``KICK_TTL``) so a lost job never strands a sink; a running job's worker
  refreshes it with the lease (the housekeeping thread, every 3 s).
- ``ss:lease:{sink}`` the token of the one process delivering for the sink (one
  batch in flight: FIFO). Renewed while held, released by token (Lua), expires
  (``LEASE_TTL``) after a crash.
- ``ss:wait:{sink}``  the epoch-ms moment a delayed job (``maxWaitSecs`` or a
  retry) is scheduled for; a job that finds it in the future goes back to sleep
  instead of scheduling again.

Two RQ queues, taken in order: ``deliver`` (kicks from appends and from
sinks that delivered) and ``deliver-slow`` (retries of failing sinks, sinks
deferred because their destination is slow, the reaper's re-kicks). A
worker takes a slow job only when no other waits, so a backlog of jobs for
hung or failing sinks never delays a healthy sink's job.

Housekeeping by work: ``ss:due`` (a sorted set) names the sinks the reaper must
look at, scored by when. A kick adds the sink (due at once: if its job is lost,
the reaper's next round finds it idle with work), a wake-up adds it at its due
time plus ``WAKE_GRACE_MS`` (if RQ's scheduler is late or gone), and a job that
ends with nothing left to do removes it (``settle``) unless a kick, a lease or
a wake-up is pending. Idle sinks are in no set: they cost nothing.

The race "event appended while the job finishes" is closed by the job itself:
it deletes its kick flag *then* looks for pending events, re-kicking (NX) when
it finds some, while an appender writes *then* kicks. Either side sees the other.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

import redis
from redis.client import Pipeline
from rq import Queue

from streamsink.storage import keys, scripts

QUEUE_NAME = "deliver"
SLOW_QUEUE_NAME = "deliver-slow"
QUEUE_NAMES = (QUEUE_NAME, SLOW_QUEUE_NAME)  # in the order workers take them
# After a SIGKILL both expire, then the reaper (every 5 s) re-kicks: delivery
# resumes within ~20 s.
KICK_TTL = 15
LEASE_TTL_MS = 15_000
JOB_PATH = "streamsink.delivery.job.deliver_job"
#: A wake-up the RQ scheduler has not run this long after its time: the reaper does.
WAKE_GRACE_MS = 2000


kick_key = keys.kick
lease_key = keys.lease
wait_key = keys.wait


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def delivery_queue(connection: redis.Redis, slow: bool = False) -> Queue:
    return Queue(SLOW_QUEUE_NAME if slow else QUEUE_NAME, connection=connection)


def delivery_queues(connection: redis.Redis) -> list[Queue]:
    """Both queues, in the order workers take them."""
    return [Queue(name, connection=connection) for name in QUEUE_NAMES]


def _job_options() -> dict[str, object]:
    # Results are of no use to anyone: keep none; failures for a day (rq info).
    return {"result_ttl": 0, "failure_ttl": 86_400, "job_timeout": 600}


def enqueue_now(connection: redis.Redis, stream_id: str, sink_id: str, slow: bool = False) -> None:
    delivery_queue(connection, slow).enqueue(JOB_PATH, stream_id, sink_id, **_job_options())


def kick(
    connection: redis.Redis,
    stream_id: str,
    sink_id: str,
    slow: bool = False,
    due_ms: int | None = None,
) -> bool:
    """Enqueue a delivery job unless one is queued or running. True if enqueued.
    ``slow``: on the slow queue (a failing sink, a slow destination, a re-kick).
    The sink is due for the reaper at ``due_ms`` (default now: if the job is
    lost, the next round finds it; a job that ends idle takes it out)."""
    claim = [kick_key(sink_id), keys.DUE]
    due = now_ms() if due_ms is None else due_ms
    if not scripts.KICK_ONE(connection, claim, [sink_id, KICK_TTL, due]):
        return False
    enqueue_now(connection, stream_id, sink_id, slow)
    return True


def settle(connection: redis.Redis, sink_id: str, recheck_at: int | None = None) -> bool:
    """The sink has nothing to do: drop it from the due set unless a job is
    queued or running or a wake-up is pending (then, with ``recheck_at``, it is
    due again then). True when dropped."""
    sink_keys = [keys.DUE, kick_key(sink_id), lease_key(sink_id), wait_key(sink_id)]
    args = [sink_id, now_ms(), "" if recheck_at is None else recheck_at]
    return bool(scripts.DUE_SETTLE(connection, sink_keys, args))


def forget(pipe: redis.Redis | Pipeline, sink_id: str) -> None:
    """A deleted sink: its due entry and coordination keys go (``pipe`` may be in MULTI)."""
    pipe.zrem(keys.DUE, sink_id)
    pipe.delete(kick_key(sink_id), wait_key(sink_id))


def clear_kick(connection: redis.Redis, sink_id: str) -> None:
    connection.delete(kick_key(sink_id))


def wake_at(
    connection: redis.Redis, stream_id: str, sink_id: str, due_ms: int, slow: bool | None = None
) -> bool:
    """Schedule a delivery job at ``due_ms`` (RQ scheduler) unless that exact
    wake-up is already scheduled. Returns True when a job was scheduled.
    ``slow``: on the slow queue; None: there if the sink is ``retrying``."""
    key = wait_key(sink_id)
    current = connection.get(key)
    if current is not None and int(current) == due_ms:
        return False
    if slow is None:
        slow = connection.hget(keys.sink(sink_id), "status") in (b"retrying", "retrying")
    ttl = max(1, (due_ms - now_ms()) // 1000 + 120)
    with connection.pipeline(transaction=False) as pipe:
        pipe.set(key, due_ms, ex=ttl)
        pipe.zadd(keys.DUE, {sink_id: due_ms + WAKE_GRACE_MS})
        pipe.execute()
    # RQ's scheduler keeps whole seconds (the fraction is cut off): round up, or
    # the job runs up to 1 s early, finds this wake-up still pending and ends,
    # leaving the sink to the reaper.
    when = datetime.fromtimestamp(-(-due_ms // 1000), tz=UTC)
    delivery_queue(connection, slow).enqueue_at(
        when,
        JOB_PATH,
        stream_id,
        sink_id,
        job_id=f"ss-wake-{sink_id}-{due_ms}",
        **_job_options(),
    )
    return True


def waiting_until(connection: redis.Redis, sink_id: str) -> int | None:
    """The scheduled wake-up (epoch ms) if it is still in the future."""
    value = connection.get(wait_key(sink_id))
    if value is None:
        return None
    due = int(value)
    return due if due > now_ms() else None


def clear_wait(connection: redis.Redis, sink_id: str) -> None:
    connection.delete(wait_key(sink_id))


class Lease:
    """The exclusive right to deliver for one sink (see module docstring)."""

    def __init__(self, connection: redis.Redis, sink_id: str, ttl_ms: int = LEASE_TTL_MS):
        self.connection = connection
        self.sink_id = sink_id
        self.key = lease_key(sink_id)
        self.ttl_ms = ttl_ms
        self.token = secrets.token_hex(12)

    def acquire(self) -> bool:
        return bool(self.connection.set(self.key, self.token, nx=True, px=self.ttl_ms))

    def stage_acquire(self, pipe: Pipeline) -> None:
        """``acquire`` queued on a pipeline; its reply is truthy when taken."""
        pipe.set(self.key, self.token, nx=True, px=self.ttl_ms)

    def renew(self) -> bool:
        """Extend the lease; False if it was lost (expired and taken)."""
        return bool(scripts.RENEW_IF_HELD(self.connection, [self.key], [self.token, self.ttl_ms]))

    def stage_check(self, pipe: Pipeline) -> None:
        """Read the lease's holder on a pipeline; ``is_holder`` tells its reply."""
        pipe.get(self.key)

    def stage_keep_alive(self, pipe: Pipeline, ttl_ms: int | None = None) -> None:
        """``keep_alive`` queued on a pipeline; its reply is truthy while ours.
        ``ttl_ms``: for that long only (the kick flag for as many seconds, rounded up)."""
        lease_and_kick = [self.key, kick_key(self.sink_id)]
        kick_ttl = KICK_TTL if ttl_ms is None else -(-ttl_ms // 1000)
        args = [self.token, self.ttl_ms if ttl_ms is None else ttl_ms, kick_ttl]
        scripts.KEEP_ALIVE(pipe, lease_and_kick, args)

    def is_holder(self, reply: object) -> bool:
        """Whether a ``stage_check`` reply says the lease is still ours."""
        if isinstance(reply, bytes):
            reply = reply.decode("latin-1")
        return reply == self.token

    def keep_alive(self) -> bool:
        """Renew the lease and, while it is ours, the sink's kick flag, in one
        step: a flag set after the holder released and cleared it would make
        appends skip the kick of an idle sink."""
        lease_and_kick = [self.key, kick_key(self.sink_id)]
        return bool(
            scripts.KEEP_ALIVE(self.connection, lease_and_kick, [self.token, self.ttl_ms, KICK_TTL])
        )

    def release(self, pipe: Pipeline | None = None) -> None:
        """Give the lease up if it is still ours (on ``pipe``: staged, not sent)."""
        scripts.RELEASE_IF_HELD(self.connection if pipe is None else pipe, [self.key], [self.token])


def is_idle(connection: redis.Redis, sink_id: str) -> bool:
    """No job queued or running and no live lease for the sink."""
    pipe = connection.pipeline(transaction=False)
    pipe.exists(kick_key(sink_id))
    pipe.exists(lease_key(sink_id))
    kicked, leased = pipe.execute()
    return not kicked and not leased


def kick_matching_call(stream_id: str, event_types: set[str]) -> tuple[list[str], list[object]]:
    """Keys and arguments of ``scripts.KICK_MATCHING`` (sync and asyncio clients)."""
    return [keys.stream_sinks(stream_id)], [
        keys.SINK_KEY_PREFIX,
        keys.KICK_KEY_PREFIX,
        KICK_TTL,
        *sorted(event_types),
    ]


def claimed_ids(raw: object) -> list[str]:
    """The sink ids ``scripts.KICK_MATCHING`` claimed."""
    return [c.decode() if isinstance(c, bytes) else str(c) for c in raw or ()]  # type: ignore[attr-defined]


def enqueue_claimed(connection: redis.Redis, stream_id: str, claimed: list[str]) -> int:
    """One delivery job per claimed sink, in one pipeline. Returns how many."""
    if not claimed:
        return 0
    queue = delivery_queue(connection)
    with connection.pipeline() as enqueue_pipe:
        for sink_id in claimed:
            queue.enqueue(JOB_PATH, stream_id, sink_id, pipeline=enqueue_pipe, **_job_options())
        enqueue_pipe.execute()
    return len(claimed)


def kick_matching(connection: redis.Redis, stream_id: str, event_types: set[str]) -> int:
    """After an append: kick every enabled sink of the stream whose filter lets
    one of ``event_types`` through (claiming the kick flags in one script: one
    round trip when every sink is busy already). Returns how many jobs were
    enqueued."""
    sinks_key, args = kick_matching_call(stream_id, event_types)
    raw = scripts.KICK_MATCHING(connection, sinks_key, args)
    return enqueue_claimed(connection, stream_id, claimed_ids(raw))
