"""``streamsink transform run HANDLER EVENTS``: try a handler file locally.

EVENTS is a JSON file holding ``[{eventType, payload}, ...]`` or
``{"events": [...]}``, checked by the rules and limits of ``POST .../events``.
Prints the OTLP/JSON body (pretty) to stdout, warnings and errors to stderr
(with the handler's line and column and the source line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import orjson
from pydantic import ValidationError

from streamsink.api.models import CreateStreamEventsIn
from streamsink.errors import CompileError, HandlerError, TransformError
from streamsink.settings import Settings
from streamsink.transform.simulate import SIMULATE_STREAM_ID, simulate


def _load_events(path: str | Path, settings: Settings) -> list[dict[str, Any]]:
    """The events of ``path``, checked by the API's own rules (``CreateStreamEventsIn``
    and its limits), so the CLI runs only what ``POST .../events`` would take."""
    raw = Path(path).read_bytes()
    if len(raw) > settings.max_body_bytes:
        raise ValueError(
            f"{path} is {len(raw)} bytes; the API takes at most {settings.max_body_bytes}"
            " (STREAMSINK_MAX_BODY_BYTES)"
        )
    data = orjson.loads(raw)
    if isinstance(data, list):
        data = {"events": data}
    try:
        body = CreateStreamEventsIn.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problems(exc)[:5])
        raise ValueError(
            f'expected a JSON array of {{eventType, payload}} or {{"events": [...]}}: {problems}'
        ) from None
    limit = settings.max_events_per_request
    if len(body.events) > limit:
        raise ValueError(
            f"{len(body.events)} events; the API takes at most {limit} a request"
            " (STREAMSINK_MAX_EVENTS_PER_REQUEST)"
        )
    return [{"eventType": e.event_type, "payload": e.payload} for e in body.events]


def _problems(exc: ValidationError) -> list[str]:
    """One line per field (a union's alternatives joined with "or")."""
    fields: dict[tuple[Any, ...], list[str]] = {}
    for e in exc.errors():
        fields.setdefault(tuple(e["loc"][:3]), []).append(e["msg"])
    out = []
    for loc, msgs in fields.items():
        prefix = "Input should be "
        if len(msgs) > 1 and all(m.startswith(prefix) for m in msgs):
            msgs = [prefix + " or ".join(m.removeprefix(prefix) for m in msgs)]
        out.append(f"{_loc(loc)}: {'; '.join(msgs)}" if loc else "; ".join(msgs))
    return out


def _loc(loc: tuple[Any, ...]) -> str:
    """``("events", 0, "eventType")`` -> ``events[0].eventType``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def format_error(exc: TransformError, handler_path: str, code: str) -> str:
    """``path:line:column: kind: message`` plus the source line and a caret."""
    line = getattr(exc, "line", None)
    column = getattr(exc, "column", None)
    located = isinstance(exc, (CompileError, HandlerError))
    message = exc.message if located else str(exc)  # type: ignore[attr-defined]
    where = handler_path
    if line is not None:
        where += f":{line}" + (f":{column}" if column is not None else "")
    out = f"{where}: {exc.kind}: {message}"
    if located and line is not None:
        lines = code.splitlines()
        if 1 <= line <= len(lines):
            src = lines[line - 1]
            out += f"\n  {src}"
            if column is not None:
                out += "\n  " + " " * (column - 1) + "^"
    return out


def run_transform(
    handler_path: str | Path,
    events_path: str | Path,
    *,
    stream_id: str = SIMULATE_STREAM_ID,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the handler file on the events file; 0 on success, 1 on any error."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    handler_path, events_path = str(handler_path), str(events_path)
    try:
        code = Path(handler_path).read_text("utf-8")
        events = _load_events(events_path, Settings())
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return 1
    try:
        result = simulate(code, events, stream_id=stream_id)
    except TransformError as exc:
        print(format_error(exc, handler_path, code), file=err)
        return 1
    for w in result.get("warnings", []):
        print(f"warning: {w}", file=err)
    out.write(orjson.dumps(result["otlp"], option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
