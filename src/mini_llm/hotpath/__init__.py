"""The one place that picks the compiled or the pure-Python hot path, and says which."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Final, Literal

from mini_llm._flags import parse_flag
from mini_llm.hotpath.errors import BodyTooLarge, EventTooLarge, HotPathError, HTTPParseError

__all__ = [
    "FALLBACK_REASON",
    "IMPLEMENTATION",
    "NO_EXTENSIONS",
    "BodyBuffer",
    "BodyTooLarge",
    "EventTooLarge",
    "HTTPParseError",
    "HotPathError",
    "ResponseParser",
    "SSEEvent",
    "SSESplitter",
]

# NOTE: a bad value raises FlagError at import, which the CLI turns into a start-up error.
NO_EXTENSIONS: Final[bool] = (
    parse_flag("MINI_LLM_NO_EXTENSIONS", os.environ.get("MINI_LLM_NO_EXTENSIONS"))
    or sys.implementation.name != "cpython"
)

# Why the compiled path is not running although it was asked for; empty when all is as asked.
FALLBACK_REASON: str = ""

if TYPE_CHECKING or NO_EXTENSIONS:
    from mini_llm.hotpath._buffer_py import BodyBuffer
    from mini_llm.hotpath._http_py import ResponseParser
    from mini_llm.hotpath._sse_py import SSEEvent, SSESplitter

    IMPLEMENTATION: Literal["cython", "python"] = "python"
else:
    try:
        from mini_llm.hotpath._buffer_c import BodyBuffer
        from mini_llm.hotpath._http_c import ResponseParser
        from mini_llm.hotpath._sse_c import SSEEvent, SSESplitter

        IMPLEMENTATION = "cython"
    except ImportError as exc:  # pragma: no cover - only a broken install lands here; logged at start-up
        from mini_llm.hotpath._buffer_py import BodyBuffer
        from mini_llm.hotpath._http_py import ResponseParser
        from mini_llm.hotpath._sse_py import SSEEvent, SSESplitter

        IMPLEMENTATION = "python"
        FALLBACK_REASON = f"compiled hot path failed to import ({exc}); reinstall with a C compiler"
