"""The one exception hierarchy of streamsink: every exception class it defines.

    StreamsinkError
     +-- ApiError                    rendered as {"code", "detail"} with its status
     |    +-- BadRequest             400
     |    +-- AuthenticationFailed   401
     |    +-- Forbidden              403 (a scoped token outside its scope)
     |    +-- NotFound               404
     |    +-- Conflict               409
     |    +-- PayloadTooLarge        413
     |    +-- UnsupportedMediaType   415 (OTLP receiver: content type or encoding)
     |    +-- Unprocessable          422
     |    +-- TooManyRequests        429 + Retry-After
     |    |    +-- StreamOverBudget   a stream's log is over STREAMSINK_STREAM_MAX_BYTES
     |    +-- StoreFull              503 + Retry-After: Redis refused a write (maxmemory)
     +-- BodyTooLarge                a decoded request body over its limit (answered 413)
     +-- TransformError              a user's handler failed (message for that user)
     |    +-- CompileError
     |    +-- HandlerError
     |    +-- HandlerTimeout
     |    +-- HandlerMemoryExceeded
     |    +-- OutputError
     |         +-- OutputTooLarge
     +-- TimeParseError (also a ValueError)  a value is not a time streamsink accepts
     +-- DestinationRefused          a sink URL or its address is not allowed (netguard)
     +-- TransportError              a request to a sink got no (whole) answer (sinkhttp)
          +-- InvalidRequest         the request cannot be sent (URL, headers): permanent
          +-- TimeoutException
          |    +-- ConnectTimeout
          |    +-- ReadTimeout
          |    +-- WriteTimeout
          |    +-- PoolTimeout
          +-- NetworkError
          |    +-- ConnectError
          |    +-- ReadError
          |    +-- WriteError
          +-- RemoteProtocolError    the sink's answer is not HTTP/1.1

The transport errors are named as httpx names its own (the delivery client's
messages quote the class name: ``timed out (ReadTimeout) ...``); the httpx-based
transport translates httpx's and httpcore's into these.
"""

from __future__ import annotations


class StreamsinkError(Exception):
    """Root of every error streamsink raises on purpose."""


# --- API -------------------------------------------------------------------


class ApiError(StreamsinkError):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class BadRequest(ApiError):
    status_code = 400
    code = "bad_request"


class AuthenticationFailed(ApiError):
    status_code = 401
    code = "authentication_failed"


class Forbidden(ApiError):
    """A valid token that does not reach this route or resource (scoped tokens)."""

    status_code = 403
    code = "forbidden"


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status_code = 413
    code = "payload_too_large"


class Unprocessable(ApiError):
    status_code = 422
    code = "validation"


class TooManyRequests(ApiError):
    """429 with ``Retry-After`` (seconds): the caller should try again later."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: int, code: str | None = None):
        super().__init__(detail, code=code)
        self.headers = {"Retry-After": str(retry_after)}


class StreamOverBudget(TooManyRequests):
    """The stream's log holds more undelivered events than its budget: back-pressure
    until its sinks catch up (nothing of the request was stored)."""

    code = "stream_over_budget"

    def __init__(self, stream_id: str, held: int, asked: int, budget: int, retry_after: int):
        super().__init__(
            f"stream {stream_id} is over its memory budget: its event log holds about"
            f" {held} bytes its sinks have not all delivered, and these events add {asked}"
            f" (budget {budget} bytes, STREAMSINK_STREAM_MAX_BYTES); nothing was stored,"
            f" retry after {retry_after} s, once its sinks catch up",
            retry_after=retry_after,
        )
        self.stream_id = stream_id


class StoreFull(ApiError):
    """503: Redis refused a write for memory (``maxmemory``, noeviction); nothing
    was stored."""

    status_code = 503
    code = "store_full"

    def __init__(self, retry_after: int):
        super().__init__(
            "the data store is out of memory (Redis maxmemory, STREAMSINK_REDIS_MAXMEMORY"
            " for the embedded one); nothing was stored: retry after"
            f" {retry_after} s, once sinks catch up and the logs are trimmed"
        )
        self.headers = {"Retry-After": str(retry_after)}


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"


class BodyTooLarge(StreamsinkError):
    """The decoded body is larger than the limit (the encoding middleware answers 413)."""


# --- Transform ---------------------------------------------------------------


class TransformError(StreamsinkError):
    """A user's handler failed: the message is meant for that user."""

    kind: str = "transform_error"


class CompileError(TransformError):
    """The code does not compile or defines no ``handler`` function."""

    kind = "compile_error"

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        where = ""
        if line is not None:
            where = f" (line {line})" if column is None else f" (line {line}, column {column})"
        super().__init__(f"{message}{where}")
        self.message = message
        self.line = line
        self.column = column


class HandlerError(TransformError):
    """The handler threw."""

    kind = "handler_error"

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")
        self.message = message
        self.line = line
        self.column = column


class HandlerTimeout(TransformError):
    kind = "handler_timeout"


class HandlerMemoryExceeded(TransformError):
    kind = "handler_memory"


class OutputError(TransformError):
    """The handler's result has a bad shape; the message names the path
    (``spans[3].startTime: ...``)."""

    kind = "output_error"

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class OutputTooLarge(OutputError):
    """The handler's result, as JSON text, is over ``STREAMSINK_JS_MAX_OUTPUT_BYTES``
    (checked inside V8, before the text leaves it)."""

    kind = "output_too_large"

    def __init__(self, size: int, limit: int, *, at_least: bool = False):
        super().__init__(
            "",
            f"the handler's result is {'at least ' if at_least else ''}{size} bytes of JSON,"
            f" over the {_bytes(limit)} output limit (STREAMSINK_JS_MAX_OUTPUT_BYTES={limit})",
        )
        self.size = size
        self.limit = limit


class TimeParseError(StreamsinkError, ValueError):
    """The value is not a time streamsink accepts; the message says why."""


def _bytes(n: int) -> str:
    return f"{n // 1048576} MiB" if n % 1048576 == 0 else f"{n} byte"


# --- Sinks: destinations and transport ---------------------------------------------


class DestinationRefused(StreamsinkError):
    """A sink URL or the address it resolves to is not allowed."""


class TransportError(StreamsinkError):
    """A request to a sink got no (whole) answer."""


class InvalidRequest(TransportError):
    """The request cannot be sent as it is (bad URL or header values)."""


class TimeoutException(TransportError):
    pass


class ConnectTimeout(TimeoutException):
    pass


class ReadTimeout(TimeoutException):
    pass


class WriteTimeout(TimeoutException):
    pass


class PoolTimeout(TimeoutException):
    pass


class NetworkError(TransportError):
    pass


class ConnectError(NetworkError):
    pass


class ReadError(NetworkError):
    pass


class WriteError(NetworkError):
    pass


class RemoteProtocolError(TransportError):
    pass
