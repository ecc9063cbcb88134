"""Events -> the handler's input, as JSON text for one V8 call.

The handler sees ``{events: [{eventType, payload}]}`` in stream order. A
payload string that holds JSON is parsed (inside V8, with ``JSON.parse``, so
"is JSON" means exactly what JavaScript says); any other string stays a string.
A payload that is already a JSON value (e.g. from a simulate request) is
passed as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from streamsink.errors import TransformError


def build_input_json(events: Sequence[Mapping[str, Any]]) -> str:
    """JSON text of ``{"events": [{"eventType", "payload"}, ...]}``.

    Only ``eventType`` and ``payload`` are passed (the Svix contract); other
    keys of the event mappings are ignored.
    """
    items = []
    for i, e in enumerate(events):
        et = e.get("eventType")
        if not isinstance(et, str):
            raise TransformError(f"events[{i}].eventType: expected a string")
        items.append({"eventType": et, "payload": e.get("payload")})
    try:
        return orjson.dumps({"events": items}).decode()
    except TypeError as exc:  # integers beyond 64 bits, non-JSON values
        import json

        try:
            return json.dumps({"events": items}, ensure_ascii=False, separators=(",", ":"))
        except (TypeError, ValueError):
            raise TransformError(f"events: not JSON-serialisable: {exc}") from None
