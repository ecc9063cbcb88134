"""What the batch path needs from a sink's type: the ``SinkKind`` seam.

``delivery.batch`` runs every kind the same way: ``prepare`` (the sink's
transformation and encoding; raises on a batch it cannot turn into a payload),
``send`` (the requests and how their answers classify), and on success
``stage_success`` (what the kind remembers, on the batch's outcome pipeline).
The cursor, the attempt records, retry-or-disable and the metrics stay in
``delivery.batch``, the same for every kind. A new kind is a new module and a
row in ``delivery.kinds.KINDS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from redis.client import Pipeline

from streamsink.sinkhttp.export import BatchResult
from streamsink.storage import attempts
from streamsink.storage.eventlog import LogEntry
from streamsink.storage.sinks import SinkRecord

if TYPE_CHECKING:
    from streamsink.delivery.engine import Engine

P = TypeVar("P")


@dataclass(slots=True)
class Sent:
    """A batch's requests and how they ended."""

    result: BatchResult
    #: What the batch path records as its failure reason (None on success).
    reason: str | None = None
    #: Attempt records of steps before the outcome (e.g. an encoding switch).
    records: list[attempts.Attempt] = field(default_factory=list)
    #: Sink state learned whatever the outcome (e.g. ``negotiated_encoding``).
    learned: dict[str, Any] = field(default_factory=dict)


class SinkKind(Protocol[P]):
    """One sink ``type``: how a batch of its events is turned into requests.

    ``P`` is the kind's prepared batch, passed back to ``send`` and
    ``stage_success`` untouched."""

    def prepare(self, engine: Engine, sink: SinkRecord, events: list[LogEntry]) -> P:
        """Transform and encode; raises ``TransformError`` (or any error) when
        the batch cannot be turned into a payload: the sink is disabled."""
        ...

    def items(self, prepared: P) -> int:
        """How many items (spans, messages) the batch sends: attempts and metrics."""
        ...

    def send(self, engine: Engine, sink: SinkRecord, prepared: P, first: str, last: str) -> Sent:
        """Send the batch (events ``first``..``last``) and classify the outcome."""
        ...

    def stage_success(self, pipe: Pipeline, engine: Engine, sink: SinkRecord, prepared: P) -> None:
        """What the kind remembers after a delivered batch, staged on ``pipe``."""
        ...
