"""Exception handlers: every error answer is ``{code, detail}`` with its status,
except request validation (FastAPI's 422 ``{detail: [{loc, msg, type}]}``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from streamsink.errors import ApiError, StoreFull
from streamsink.storage.eventlog import RETRY_AFTER_S, is_oom

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation",
    429: "rate_limited",
    503: "service_unavailable",
}


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


def validation_error(loc: tuple[str | int, ...], msg: str, type_: str = "value_error") -> Any:
    """A RequestValidationError rendered like FastAPI's own 422."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": type_}])


def _json_safe(content: Any) -> bytes:
    """JSON bytes that never fail: lone surrogates are escaped, and when an echoed
    ``input`` holds NaN/Infinity the inputs are dropped."""
    try:
        return json.dumps(content, ensure_ascii=True, allow_nan=False).encode()
    except ValueError:
        for error in content.get("detail", []):
            error.pop("input", None)
        return json.dumps(content, ensure_ascii=True, default=str).encode()


async def _validation_error(_: Request, exc: Exception) -> Response:
    """FastAPI's 422 shape, rendered safely whatever the request contained."""
    assert isinstance(exc, RequestValidationError)
    body = _json_safe({"detail": jsonable_encoder(exc.errors())})
    return Response(body, status_code=422, media_type="application/json")


def api_error_response(exc: ApiError) -> JSONResponse:
    """The answer of an ``ApiError``, with its headers (e.g. ``Retry-After``)."""
    response = error_response(exc.status_code, exc.code, exc.detail)
    response.headers.update(getattr(exc, "headers", None) or {})
    return response


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_error_response(exc)


async def _redis_error(request: Request, exc: Exception) -> JSONResponse:
    """Redis refusing a write for memory (``maxmemory``, noeviction) is a 503
    with ``Retry-After``, in every write path; any other reply error is a bug."""
    if is_oom(exc):
        log.warning("redis out of memory during %s %s: %s", request.method, request.url.path, exc)
        return api_error_response(StoreFull(RETRY_AFTER_S))
    return await _unexpected(request, exc)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    response = error_response(exc.status_code, code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _redis_down(request: Request, exc: Exception) -> JSONResponse:
    log.error("redis unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(503, "service_unavailable", "the data store is unavailable")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort (also for errors raised in middleware, outside the router)."""
    if isinstance(exc, ApiError):
        return await _api_error(request, exc)
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
        return await _redis_down(request, exc)
    if is_oom(exc):
        return api_error_response(StoreFull(RETRY_AFTER_S))
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(redis.ConnectionError, _redis_down)
    app.add_exception_handler(redis.TimeoutError, _redis_down)
    app.add_exception_handler(redis.ResponseError, _redis_error)
    app.add_exception_handler(Exception, _unexpected)
