"""The error answers routes document in the OpenAPI document (``responses=``)."""

from __future__ import annotations

from typing import Any

from streamsink.api.models import HttpErrorOut

Responses = dict[int | str, dict[str, Any]]

ERRORS: Responses = {
    401: {"model": HttpErrorOut, "description": "Unauthorized"},
    404: {"model": HttpErrorOut, "description": "Not Found"},
    409: {"model": HttpErrorOut, "description": "Conflict"},
}
SINK_ERRORS: Responses = {**ERRORS, 400: {"model": HttpErrorOut, "description": "Bad request"}}
EVENT_ERRORS: Responses = {
    **ERRORS,
    400: {"model": HttpErrorOut, "description": "Bad Request (a body that is not gzip)"},
    413: {"model": HttpErrorOut, "description": "Payload Too Large"},
    415: {"model": HttpErrorOut, "description": "Unsupported Content-Encoding"},
    429: {
        "model": HttpErrorOut,
        "description": "The stream is over its budget (STREAMSINK_STREAM_MAX_BYTES):"
        " nothing stored, retry after `Retry-After` seconds",
    },
    503: {
        "model": HttpErrorOut,
        "description": "The data store is unavailable or out of memory: nothing stored,"
        " retry (after `Retry-After` seconds when given)",
    },
}
