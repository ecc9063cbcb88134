"""``streamsink transform run HANDLER EVENTS``: try a handler file locally.

EVENTS is a JSON file holding ``[{eventType, payload}, ...]`` or
``{"events": [...]}``. Prints the OTLP/JSON body (pretty) to stdout, warnings
and errors to stderr (with the handler's line and column and the source line).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from streamsink.errors import CompileError, HandlerError, TransformError
from streamsink.transform.simulate import SIMULATE_STREAM_ID, simulate


def _load_events(path: str | Path) -> list[dict[str, Any]]:
    data = orjson.loads(Path(path).read_bytes())
    if isinstance(data, dict):
        data = data.get("events")
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError('expected a JSON array of {eventType, payload} or {"events": [...]}')
    return data


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
        events = _load_events(events_path)
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
