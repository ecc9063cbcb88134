"""``GET /stream/{stream_id}/transformation-templates``: the bundled handlers
(``transforms/``) with their sample events, for the portal's "start from" menu
or any script. Under the stream's path so that a stream's portal token reaches
it like the rest of its stream; the list is the same for every stream."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from streamsink.api.deps import RedisDep
from streamsink.api.params import StreamIdPath
from streamsink.api.responses import ERRORS
from streamsink.api.wire import WireModel
from streamsink.storage import streams as store_streams

#: The repository's ``transforms/`` as shipped in the package (a symlink in a
#: checkout, copied into the wheel).
TEMPLATES_DIR = Path(__file__).parents[2] / "transform" / "templates"
DEFAULT_JS = Path(__file__).parents[2] / "transform" / "default.js"

router = APIRouter(tags=["Stream Sink"])

_BULLET = re.compile(r"^- `(?P<file>[\w.-]+\.js)`: (?P<text>.*)$", re.MULTILINE)
_SAMPLES = re.compile(r"Samples: `samples/(?P<file>[\w.-]+\.json)`")
_SPANS = re.compile(r"\bspans\b")


class TransformationTemplateOut(WireModel):
    name: str = Field(description="file name, e.g. `svix-webhook-attempts.js`")
    description: str = Field(description="what the handler makes of which events")
    code: str
    sink_type: str = Field(
        description="the sink type its output is for: `otelTracing` (returns spans) or `http`"
    )
    sample_events: list[dict[str, Any]] = Field(
        default_factory=list, description="events to try it on (`{eventType, payload}`)"
    )


class ListTransformationTemplateOut(WireModel):
    data: list[TransformationTemplateOut]


@lru_cache(maxsize=1)
def load_templates() -> list[dict[str, Any]]:
    """The bundled handlers, described by ``transforms/README.md``'s bullets
    (their order), each with its sample events when it names a file."""
    readme = TEMPLATES_DIR / "README.md"
    described: dict[str, str] = {}
    if readme.is_file():
        for m in _BULLET.finditer(readme.read_text(encoding="utf-8")):
            described[m.group("file")] = m.group("text")
    order = {name: i for i, name in enumerate(described)}
    files = sorted(
        TEMPLATES_DIR.glob("*.js"), key=lambda p: (order.get(p.name, len(order)), p.name)
    )
    out = []
    for path in files or [DEFAULT_JS]:
        text = described.get(path.name, "")
        samples: list[dict[str, Any]] = []
        m = _SAMPLES.search(text)
        sample_file = TEMPLATES_DIR / "samples" / (m.group("file") if m else "")
        if m and sample_file.is_file():
            samples = json.loads(sample_file.read_text(encoding="utf-8"))
        description = _SAMPLES.sub("", text).strip().rstrip(".").strip()
        code = path.read_text(encoding="utf-8")
        out.append(
            {
                "name": path.name,
                "description": description,
                "code": code,
                "sinkType": "otelTracing" if _SPANS.search(code) else "http",
                "sampleEvents": samples,
            }
        )
    return out


@router.get(
    "/stream/{stream_id}/transformation-templates",
    operation_id="v1.streaming.transformation-templates.list",
    response_model=ListTransformationTemplateOut,
    response_model_by_alias=True,
    responses=ERRORS,
)
def list_templates(stream_id: StreamIdPath, client: RedisDep) -> dict[str, Any]:
    """The handlers bundled with streamsink (as in `transforms/`): name,
    description, code and sample events, to start a sink's transformation from."""
    store_streams.require_stream(client, stream_id)
    return {"data": load_templates()}
