"""Turn mini-racer exception texts into a message plus the handler's line/column.

mini-racer formats a JS error as::

    handler.js:3: Error: boom
      throw new Error('boom');
      ^

    Error: boom
        at handler (handler.js:3:9)

The first line names the script and line, the caret marks the column; for a
thrown ``Error`` the first stack frame in the user's script is more precise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

USER_SCRIPT = "handler.js"

_HEAD = re.compile(r"^(?P<src>[^\n:]*):(?P<line>\d+): (?P<msg>.*)$")
_FRAME = re.compile(re.escape(USER_SCRIPT) + r":(?P<line>\d+):(?P<col>\d+)\)?\s*$")


@dataclass(frozen=True, slots=True)
class JsErrorInfo:
    message: str
    line: int | None
    column: int | None


def parse_js_error(text: str, *, whole_script_is_user: bool = False) -> JsErrorInfo:
    """Extract ``message``, ``line`` and ``column`` (1-based) from a mini-racer error text.

    Line and column are only reported when they point into the user's script
    (``handler.js``); an error raised in streamsink's own wrapper has none.
    A syntax error is reported before the script gets its name (as
    ``<anonymous>``): pass ``whole_script_is_user`` when evaluating user code.
    """
    lines = text.splitlines()
    if not lines:
        return JsErrorInfo("unknown JavaScript error", None, None)
    head = _HEAD.match(lines[0])
    if head is None:
        return JsErrorInfo(lines[0].strip(), None, None)
    message = head.group("msg").strip()
    for frame in lines[3:]:
        m = _FRAME.search(frame.strip())
        if m and frame.strip().startswith("at "):
            return JsErrorInfo(message, int(m.group("line")), int(m.group("col")))
    if head.group("src") != USER_SCRIPT and not whole_script_is_user:
        return JsErrorInfo(message, None, None)
    column = None
    if len(lines) >= 3 and "^" in lines[2]:
        column = lines[2].index("^") + 1
    return JsErrorInfo(message, int(head.group("line")), column)
