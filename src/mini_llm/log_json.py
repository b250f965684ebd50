"""MINI_LLM_LOG_FORMAT=json: every log record one JSON object per line, granian's too."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from mini_llm.log_redaction import LOGGER_NAMES

# Marks a record whose message is a whole JSON object already (an access line): JsonFormatter writes it as is.
JSON_LINE: Final = "mini_llm_json_line"
_encode = msgspec.json.Encoder().encode


def timestamp(seconds: float) -> str:
    """RFC 3339, UTC, milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """MINI_LLM_LOG_FORMAT=json: every record one JSON object per line; an access line is one already."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if getattr(record, JSON_LINE, False):
            return message
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return _encode(line).decode()


def use_json() -> None:
    """Every handler of the gateway's loggers writes JSON from now on (an app run without `mini-llm serve`)."""
    for name in LOGGER_NAMES:
        for handler in logging.getLogger(name).handlers:
            handler.setFormatter(JsonFormatter())
