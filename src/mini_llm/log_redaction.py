"""Keep provider keys out of every log line, tracebacks included, whichever logger wrote it."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Final

MASK: Final = "***"
# The loggers whose handlers write the gateway's output (server.LOG_CONFIG), plus the root's.
LOGGER_NAMES: Final = ("", "mini_llm", "_granian", "granian.access")


class KeyRedactor(logging.Filter):
    """Blanks every configured key out of a record's message, traceback and stack before it is written.

    A handler filter, not a logger filter: handler filters also see records that child loggers
    (asyncio, aiohttp, a library's own) propagate up, and a traceback can quote a key that an
    exception message carried.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a key that contains another is masked whole.
        self._secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad format arguments: the handler's formatter meets them again
            # ... and logging's handleError reports them ("--- Logging error ---"), quoting msg and args.
            self._redact_template(record)
        else:
            clean = self.redact(message)
            if record.args or clean is not message:
                # Formatted once, here: with the args kept, the formatter would format them again.
                record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # The formatter reuses exc_text when it is set, so the traceback is rendered once, here.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def _redact_template(self, record: logging.LogRecord) -> None:
        """Masks the message template and its arguments, kept apart so that formatting still fails."""
        record.msg = self._text(record.msg)
        args = record.args
        if isinstance(args, Mapping):
            record.args = {name: self._text(value) for name, value in args.items()}
        elif args:
            record.args = tuple(self._text(value) for value in args)

    def _text(self, value: object) -> str:
        try:
            return self.redact(str(value))
        except Exception:  # an argument whose __str__ raises is what made the formatting fail
            return f"<unprintable {type(value).__name__}>"


def install(secrets: Iterable[str]) -> KeyRedactor:
    """Put one redactor on every handler the gateway's loggers write through.

    `logging.lastResort` too: a record that finds no handler on its way up (a logger that does not
    propagate and has none of its own) is written by that one.
    """
    redactor = KeyRedactor(secrets)
    handlers = [handler for name in LOGGER_NAMES for handler in logging.getLogger(name).handlers]
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        for old in [f for f in handler.filters if isinstance(f, KeyRedactor)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    return redactor
