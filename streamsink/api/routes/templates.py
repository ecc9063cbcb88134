"""``GET /stream/transformations/templates``: the bundled handlers (``transforms/``)
with their sample events, for the portal's "start from" menu or any script."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from streamsink.api.models import WireModel
from streamsink.api.responses import ERRORS

#: The repository's ``transforms/`` as shipped in the package (a symlink in a
#: checkout, copied into the wheel).
TEMPLATES_DIR = Path(__file__).parents[2] / "transform" / "templates"
DEFAULT_JS = Path(__file__).parents[2] / "transform" / "default.js"

router = APIRouter(tags=["Stream Sink"])

_BULLET = re.compile(r"^- `(?P<file>[\w.-]+\.js)`: (?P<text>.*)$", re.MULTILINE)
_SAMPLES = re.compile(r"Samples: `samples/(?P<file>[\w.-]+\.json)`")


class TransformationTemplateOut(WireModel):
    name: str = Field(description="file name, e.g. `svix-webhook-attempts.js`")
    description: str = Field(description="what the handler makes of which events")
    code: str
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
        out.append(
            {
                "name": path.name,
                "description": description,
                "code": path.read_text(encoding="utf-8"),
                "sampleEvents": samples,
            }
        )
    return out


@router.get(
    "/stream/transformations/templates",
    operation_id="v1.streaming.transformations.templates",
    response_model=ListTransformationTemplateOut,
    response_model_by_alias=True,
    responses=ERRORS,
)
async def list_templates() -> dict[str, Any]:
    """The handlers bundled with streamsink (as in `transforms/`): name,
    description, code and sample events."""
    return {"data": load_templates()}
