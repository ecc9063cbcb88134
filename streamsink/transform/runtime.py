"""Embedded V8 (mini-racer) that runs users' ``handler(input)`` functions.

One V8 isolate per (sink key, code hash), compiled once and kept in a bounded
LRU cache; a sink's code never shares an isolate, globals or state with another
sink. The exception is the bundled handlers (``default.js``,
``http-default.js`` and the templates in ``transforms/``, byte for byte): our
code, which keeps no state between calls, so the sinks that run one of them
share ``SHARED_ISOLATES`` isolates of it (by a hash of the sink key) instead
of paying an isolate each (~10 ms of CPU for a sink's first batch). An
isolate that timed out or ran out of memory is thrown away and rebuilt on the
next call. One call per batch: JSON text in, JSON text out, parsed and
serialised inside V8.

The isolate has no network, file or process access (mini-racer exposes none);
the few extras it installs (timers, WebAssembly, shared memory) are removed, and
so are ArrayBuffer, DataView and the typed arrays: their memory lives outside
the V8 heap, where the per-isolate memory limit cannot see it.

The result's size and depth are checked inside V8 (``prelude.js``) before its
JSON text leaves it: ``max_output_bytes`` (``STREAMSINK_JS_MAX_OUTPUT_BYTES``)
bounds the text, ``depth.MAX_DEPTH`` the nesting; NaN or Infinity as a span
time is an error (JSON would make it null, read as "now").
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from contextlib import ExitStack
from importlib import resources
from typing import Any

import orjson
from py_mini_racer import (
    JSEvalException,
    JSOOMException,
    JSTimeoutException,
    MiniRacer,
)

from streamsink.errors import (
    CompileError,
    HandlerError,
    HandlerMemoryExceeded,
    HandlerTimeout,
    OutputError,
    OutputTooLarge,
)
from streamsink.transform.depth import MAX_DEPTH
from streamsink.transform.jserror import USER_SCRIPT, parse_js_error
from streamsink.transform.v8 import enter_racer, sync_evaluator

__all__ = ["JsRuntime", "check_code", "default_code", "default_runtime"]

_PRELUDE = resources.files("streamsink.transform").joinpath("prelude.js").read_text("utf-8")

_OUTPUT_MARK = "streamsink-output: "
_HAS_HANDLER = "typeof handler === 'function'"
_SOURCE_URL = f"\n//# sourceURL={USER_SCRIPT}\n"
_UNDEFINED = object()


def default_code() -> str:
    """The bundled default handler (Svix's default otelTracing transformation)."""
    return _DEFAULT_CODE


_DEFAULT_CODE = resources.files("streamsink.transform").joinpath("default.js").read_text("utf-8")

SHARED_ISOLATES = 4  # isolates shared by the sinks running one bundled handler
_SHARED_KEY = "\x00bundled:"  # a sink key no sink has


def _bundled_hashes() -> frozenset[str]:
    here = resources.files("streamsink.transform")
    files = [here.joinpath("default.js"), here.joinpath("http-default.js")]
    templates = here.joinpath("templates")
    if templates.is_dir():
        files += [f for f in templates.iterdir() if f.name.endswith(".js")]
    return frozenset(_code_hash(f.read_text("utf-8")) for f in files)


def _timeout_error(timeout_ms: int, what: str = "handler") -> HandlerTimeout:
    return HandlerTimeout(f"{what} did not finish within {timeout_ms} ms")


def _memory_error(memory_mb: int) -> HandlerMemoryExceeded:
    return HandlerMemoryExceeded(f"handler exceeded the {memory_mb} MiB memory limit")


class _Isolate:
    """One V8 isolate with the prelude and one user's code loaded."""

    def __init__(self, code: str, *, timeout_ms: int, memory_mb: int) -> None:
        self.lock = threading.Lock()
        self.closed = False
        self.broken = False
        self._stack = ExitStack()
        self.mr: MiniRacer = enter_racer(self._stack)
        self.mr.set_hard_memory_limit(memory_mb * 1024 * 1024)
        try:
            self.mr.eval(_PRELUDE)
            self._load(code, timeout_ms, memory_mb)
        except BaseException:
            self.close()
            raise
        self._eval = sync_evaluator(self.mr) or self._racer_eval

    def _racer_eval(self, source: str, timeout_sec: float) -> Any:
        return self.mr.eval(source, timeout_sec=timeout_sec)

    def _load(self, code: str, timeout_ms: int, memory_mb: int) -> None:
        try:
            self.mr.eval(code + _SOURCE_URL, timeout_sec=timeout_ms / 1000)
        except JSTimeoutException:
            raise CompileError(f"top-level code did not finish within {timeout_ms} ms") from None
        except JSOOMException:
            raise CompileError(
                f"top-level code exceeded the {memory_mb} MiB memory limit"
            ) from None
        except JSEvalException as exc:  # JSParseException included
            info = parse_js_error(str(exc), whole_script_is_user=True)
            line, column = info.line, info.column
            lines = code.rstrip().split("\n")
            if line is not None and line > len(lines):  # "end of input": past the code
                line, column = len(lines), len(lines[-1]) + 1
            raise CompileError(info.message, line, column) from None
        if not self.mr.eval(_HAS_HANDLER):
            raise CompileError("no `handler` function is defined (`function handler(input)`)")

    def call(self, call_source: str, timeout_ms: int, memory_mb: int, max_output: int) -> Any:
        """Evaluate one wrapper call; map JS failures to transform errors.

        After a time-out or an out-of-memory ``broken`` is set: the caller
        must throw this isolate away.
        """
        try:
            text = self._eval(call_source, timeout_ms / 1000)
        except JSTimeoutException:
            self.broken = True
            raise _timeout_error(timeout_ms) from None
        except JSOOMException:
            self.broken = True
            raise _memory_error(memory_mb) from None
        except JSEvalException as exc:
            if self.mr.was_hard_memory_limit_reached():
                self.broken = True
                raise _memory_error(memory_mb) from None
            info = parse_js_error(str(exc))
            if _OUTPUT_MARK in info.message:
                raise _output_error(info.message.split(_OUTPUT_MARK, 1)[1], max_output) from None
            raise HandlerError(info.message, info.line, info.column) from None
        except BaseException:  # interrupted mid-call: a late answer must reach no later call
            self.broken = True
            raise
        return _decode_result(text)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._stack.close()


def _output_error(detail: str, max_output: int) -> OutputError:
    """The OutputError for a message of ``prelude.js``."""
    kind, _, rest = detail.partition(": ")
    if kind in ("too-large", "too-large-at-least"):
        return OutputTooLarge(int(rest), max_output, at_least=kind == "too-large-at-least")
    if kind == "too-deep":
        return OutputError(rest, f"nested deeper than {MAX_DEPTH} levels")
    if kind == "bad-time":
        path, _, value = rest.partition(": ")
        return OutputError(path, f"not a time: {value} (JSON would turn it into null)")
    return OutputError("", detail)


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


_BUNDLED = _bundled_hashes()


def _cache_key(sink_key: str, code_hash: str) -> tuple[str, str]:
    """The cache entry of a sink's isolate: its own, or a shared one of a bundled handler."""
    if code_hash in _BUNDLED:
        slot = zlib.crc32(sink_key.encode("utf-8")) % SHARED_ISOLATES
        return (f"{_SHARED_KEY}{slot}", code_hash)
    return (sink_key, code_hash)


def check_code(code: str, *, timeout_ms: int | None = None, memory_mb: int | None = None) -> None:
    """Compile ``code`` in a fresh throwaway isolate.

    Raises ``CompileError(message, line, column)`` on a syntax error, on an
    error or time-out in top-level code, and when no ``handler`` function is
    defined. Never raises another exception type for bad code.
    """
    if not isinstance(code, str):
        raise CompileError("code must be a string")
    t_ms, m_mb = _limits(timeout_ms, memory_mb)
    _Isolate(code, timeout_ms=t_ms, memory_mb=m_mb).close()


def _output_limit(memory_mb: int) -> int:
    """``STREAMSINK_JS_MAX_OUTPUT_BYTES`` when set, else in proportion to ``memory_mb``."""
    from streamsink.settings import Settings

    return Settings(js_memory_mb=memory_mb).js_max_output_bytes


def _limits(timeout_ms: int | None, memory_mb: int | None) -> tuple[int, int]:
    if timeout_ms is None or memory_mb is None:
        from streamsink.settings import Settings

        s = Settings()
        timeout_ms = s.js_timeout_ms if timeout_ms is None else timeout_ms
        memory_mb = s.js_memory_mb if memory_mb is None else memory_mb
    return timeout_ms, memory_mb


class JsRuntime:
    """Runs handlers with a per-call time limit and a per-isolate memory limit.

    Thread-safe: calls on one isolate are serialised by its lock, calls on
    different isolates run in parallel.
    """

    def __init__(
        self,
        *,
        timeout_ms: int | None = None,
        memory_mb: int | None = None,
        cache_size: int | None = None,
        max_output_bytes: int | None = None,
    ) -> None:
        self.timeout_ms, self.memory_mb = _limits(timeout_ms, memory_mb)
        if max_output_bytes is None:
            max_output_bytes = _output_limit(self.memory_mb)
        self.max_output_bytes = max(1, max_output_bytes)
        if cache_size is None:
            from streamsink.settings import Settings

            cache_size = Settings().js_context_cache
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[tuple[str, str], _Isolate] = OrderedDict()
        self._hash_of: dict[str, str] = {}
        self._lock = threading.Lock()

    # -- cache -------------------------------------------------------------

    def _get(self, sink_key: str, code: str) -> _Isolate:
        h = _code_hash(code)
        key = _cache_key(sink_key, h)
        doomed: list[_Isolate] = []
        with self._lock:
            iso = self._cache.get(key)
            if iso is not None and not iso.closed:
                self._cache.move_to_end(key)
                return iso
        # Compile outside the cache lock: it may take a while (top-level code).
        iso = _Isolate(code, timeout_ms=self.timeout_ms, memory_mb=self.memory_mb)
        with self._lock:
            old_hash = self._hash_of.get(sink_key)
            if old_hash is not None and old_hash != h:
                stale = self._cache.pop((sink_key, old_hash), None)
                if stale is not None:
                    doomed.append(stale)
            raced = self._cache.get(key)
            if raced is not None and not raced.closed:
                doomed.append(iso)
                iso = raced
            else:
                self._cache[key] = iso
            if key[0] == sink_key:
                self._hash_of[sink_key] = h
            else:  # a shared isolate: nothing of the sink's own to track
                self._hash_of.pop(sink_key, None)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                (old_key, old_hash), victim = self._cache.popitem(last=False)
                if self._hash_of.get(old_key) == old_hash:
                    del self._hash_of[old_key]
                doomed.append(victim)
        for victim in doomed:
            with victim.lock:
                victim.close()
        return iso

    def _discard(self, sink_key: str, code: str, iso: _Isolate) -> None:
        with self._lock:
            key = _cache_key(sink_key, _code_hash(code))
            if self._cache.get(key) is iso:
                del self._cache[key]
        iso.close()

    def evict(self, sink_key: str) -> None:
        """Drop the cached isolate(s) of one sink (e.g. after its code changed)."""
        with self._lock:
            victims = [k for k in self._cache if k[0] == sink_key]
            isos = [self._cache.pop(k) for k in victims]
            self._hash_of.pop(sink_key, None)
        for iso in isos:
            with iso.lock:
                iso.close()

    def close(self) -> None:
        with self._lock:
            isos = list(self._cache.values())
            self._cache.clear()
            self._hash_of.clear()
        for iso in isos:
            with iso.lock:
                iso.close()

    def cached(self) -> int:
        """How many isolates are cached (for tests and metrics)."""
        with self._lock:
            return len(self._cache)

    # -- calls -------------------------------------------------------------

    def run_json(self, sink_key: str, code: str | None, input_json: str) -> Any:
        """Run ``handler(JSON.parse(input_json))`` for one sink; return its result.

        ``code=None`` runs the bundled default handler. Payload strings that
        hold JSON are parsed inside V8 before the handler sees them. Raises
        ``CompileError``, ``HandlerError``, ``HandlerTimeout``,
        ``HandlerMemoryExceeded`` or ``OutputError`` (result not JSON-able).
        """
        src = _DEFAULT_CODE if code is None else code
        call = _call_source(input_json, self.max_output_bytes)
        for _ in range(3):
            iso = self._get(sink_key, src)
            with iso.lock:
                if iso.closed:  # evicted between _get and lock: fetch again
                    continue
                try:
                    return iso.call(call, self.timeout_ms, self.memory_mb, self.max_output_bytes)
                finally:
                    if iso.broken:
                        self._discard(sink_key, src, iso)
        raise HandlerError("handler isolate was evicted repeatedly; try again")  # pragma: no cover

    def run_once(self, code: str | None, input_json: str) -> Any:
        """Like ``run_json`` in a fresh isolate that is thrown away afterwards
        (simulation: no state kept between runs, nothing cached)."""
        src = _DEFAULT_CODE if code is None else code
        iso = _Isolate(src, timeout_ms=self.timeout_ms, memory_mb=self.memory_mb)
        try:
            call = _call_source(input_json, self.max_output_bytes)
            return iso.call(call, self.timeout_ms, self.memory_mb, self.max_output_bytes)
        finally:
            iso.close()


def _call_source(input_json: str, max_output: int) -> str:
    # The input travels as a JS string literal and is JSON.parse'd inside V8.
    literal = orjson.dumps(input_json).decode()
    return f"__streamsink_run({literal}, {max_output}, {MAX_DEPTH})"


def _decode_result(text: Any) -> Any:
    if not isinstance(text, str):
        raise OutputError("", "handler result could not be serialised to JSON")
    try:
        wrapped = orjson.loads(text)
    except orjson.JSONDecodeError:
        # Integers beyond 64 bits or lone surrogates: the stdlib accepts both;
        # re-encode to replace surrogates (no invalid UTF-8 may reach the encoders).
        # Past orjson's 1024 levels the stdlib recurses too deep: an OutputError.
        import json

        try:
            clean = json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8", "replace")
            wrapped = json.loads(clean)
        except RecursionError:
            raise OutputError("", f"result nested deeper than {MAX_DEPTH} levels") from None
    return wrapped.get("r", _UNDEFINED) if isinstance(wrapped, dict) else _UNDEFINED


def is_undefined(value: Any) -> bool:
    """True when the handler returned ``undefined`` (or a function)."""
    return value is _UNDEFINED


_default: JsRuntime | None = None
_default_lock = threading.Lock()


def default_runtime() -> JsRuntime:
    """The process-wide runtime, configured from ``Settings`` on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = JsRuntime()
        return _default
