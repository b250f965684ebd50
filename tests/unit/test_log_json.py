"""MINI_LLM_LOG_FORMAT=json: records as JSON objects, access lines as they are, keys masked by the redactor."""

from __future__ import annotations

import io
import json
import logging

from mini_llm import log_redaction
from mini_llm.log_json import JSON_LINE, JsonFormatter, timestamp

KEY = "sk-unit-test-key-0123456789"


def _logger() -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(log_redaction.KeyRedactor([KEY]))
    logger = logging.getLogger("mini_llm.test_log_json")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, out


def test_a_record_is_one_object_with_its_level_logger_and_masked_message() -> None:
    logger, out = _logger()
    logger.warning("provider said %s\nsecond line", f"bad key {KEY}")
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record.keys() == {"ts", "level", "logger", "message"}
    assert (record["level"], record["logger"]) == ("WARNING", "mini_llm.test_log_json")
    assert record["message"] == "provider said bad key ***\nsecond line"


def test_an_exception_stays_on_the_line() -> None:
    logger, out = _logger()
    try:
        raise ValueError(f"carrying {KEY}")
    except ValueError:
        logger.exception("failed")
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert "ValueError: carrying ***" in record["exception"]
    assert KEY not in line


def test_an_access_line_is_written_as_it_is_and_masked() -> None:
    logger, out = _logger()
    logger.info("%s", json.dumps({"request_id": "r1", "model": KEY}), extra={JSON_LINE: True})
    assert json.loads(out.getvalue()) == {"request_id": "r1", "model": "***"}


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert timestamp(0.0) == "1970-01-01T00:00:00.000Z"
    assert timestamp(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


def test_a_stack_stays_on_the_line_masked() -> None:
    logger, out = _logger()
    logger.info("where %s", KEY, stack_info=True)
    [line] = out.getvalue().splitlines()
    record = json.loads(line)
    assert record["message"] == "where ***"
    assert "test_a_stack_stays_on_the_line_masked" in record["stack"]
