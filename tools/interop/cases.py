"""The interop cases: a bundled handler, its sample events, and the spans a
receiver must end up with, computed here from the events alone (IDs by the
SHA-256 rule of docs/architecture.md (IDs), times parsed from the ISO strings), not from
streamsink's output."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TRANSFORMS = ROOT / "transforms"


def tid(stream: str, key: str) -> str:
    return hashlib.sha256(f"{stream}\x00{key}".encode()).digest()[:16].hex()


def sid(stream: str, key: str) -> str:
    return hashlib.sha256(f"{stream}\x00{key}".encode()).digest()[:8].hex()


def iso_ns(text: str) -> int:
    """An ISO 8601 time with a zone as Unix nanoseconds, exactly."""
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    if not m:
        raise ValueError(f"not an ISO 8601 time with a zone: {text!r}")
    base = datetime.fromisoformat(m[1] + m[3].replace("Z", "+00:00"))
    return int(base.timestamp()) * 10**9 + int((m[2] or "0").ljust(9, "0"))


@dataclass
class Expected:
    """One span as the receiver must show it."""

    span_id: str
    trace_id: str
    parent_id: str | None
    name: str
    start_ns: int
    end_ns: int
    #: LLM spans: the model names a receiver may show (response model, request model)
    models: tuple[str, ...] = ()
    tokens: tuple[int, int] | None = None  # LLM spans: (input/prompt, output/completion)


@dataclass
class Case:
    name: str
    handler: str  # file in transforms/
    events: list[dict[str, Any]]
    family: str  # "webhook" or "llm"

    @property
    def code(self) -> str:
        return (TRANSFORMS / self.handler).read_text()

    def expect(self, stream: str) -> list[Expected]:
        """The spans this case must produce on stream ``stream`` (the strm_ id)."""
        build = _webhook if self.family == "webhook" else _llm
        return [build(stream, self.handler, e["eventType"], _payload(e)) for e in self.events]


def _payload(event: dict[str, Any]) -> dict[str, Any]:
    p = event["payload"]
    return json.loads(p) if isinstance(p, str) else p


def _webhook(stream: str, handler: str, kind: str, p: dict[str, Any]) -> Expected:
    http = kind == "http.attempt"
    return Expected(
        span_id=sid(stream, p["attemptId"] + ("/http" if http else "")),
        trace_id=tid(stream, p["msgId"]),
        parent_id=sid(stream, p["attemptId"]) if http else None,
        name=kind,
        start_ns=iso_ns(p["startTime"]),
        end_ns=iso_ns(p["endTime"]),
    )


def _llm(stream: str, handler: str, kind: str, p: dict[str, Any]) -> Expected:
    times = {"start_ns": iso_ns(p["startTime"]), "end_ns": iso_ns(p["endTime"])}
    if kind == "agent.run":
        name = p["agentName"] if handler == "openinference.js" else f"invoke_agent {p['agentName']}"
        run = p["runId"]
        return Expected(sid(stream, run), tid(stream, run), None, name, **times)
    usage = p.get("usage")
    return Expected(
        span_id=sid(stream, p["callId"]),
        trace_id=tid(stream, p["runId"] if p.get("runId") else p["callId"]),
        parent_id=sid(stream, p["runId"]) if p.get("runId") else None,
        name=f"{p.get('operation') or 'chat'} {p['requestModel']}",
        models=tuple(m for m in (p.get("responseModel"), p["requestModel"]) if m),
        tokens=(usage["inputTokens"], usage["outputTokens"]) if usage else None,
        **times,
    )


def load(name: str) -> list[dict[str, Any]]:
    return json.loads((TRANSFORMS / "samples" / name).read_text())


def cases() -> list[Case]:
    """The Svix webhook example, and the LLM sample through both LLM handlers
    (OpenTelemetry GenAI and OpenInference attributes: MLflow and Phoenix read both)."""
    webhooks = load("svix-webhook-attempts.events.json")
    llm = load("llm-calls.events.json")
    return [
        Case("svix-webhooks", "svix-webhook-attempts.js", webhooks, "webhook"),
        Case("llm-gen-ai", "gen-ai.js", llm, "llm"),
        Case("llm-openinference", "openinference.js", llm, "llm"),
    ]
