"""Errors raised by both hot-path twins, defined once so callers catch one class."""

from __future__ import annotations

from typing import Final

DEFAULT_MAX_EVENT_SIZE: Final = 8 * 1024 * 1024


class HotPathError(ValueError):
    """Base class of the hot-path errors."""


class EventTooLarge(HotPathError):
    """An SSE event (or a single line) grew past the splitter's `max_event_size`."""


class BodyTooLarge(HotPathError):
    """A request body went past its byte limit; the gateway answers 413."""


class HTTPParseError(HotPathError):
    """A provider answer that breaks RFC 9112 framing; the message says what, never quotes the bytes."""
