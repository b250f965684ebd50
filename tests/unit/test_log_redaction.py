"""The log redactor on real loggers: no key in a message, its arguments, a traceback or a stack."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Final

import pytest

from mini_llm import log_redaction

KEY = "sk-test-redaction-key-1234567890"
LONGER = KEY + "-and-more"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger under mini_llm with its own handler, redacted as the worker's handlers are."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    parent = logging.getLogger("mini_llm.redaction-test")
    parent.addHandler(handler)
    parent.setLevel(logging.DEBUG)
    parent.propagate = False
    handler.addFilter(log_redaction.KeyRedactor([KEY, LONGER, ""]))
    yield parent, out
    parent.removeHandler(handler)


def test_message_and_arguments_are_redacted_at_every_level(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = captured
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        log.log(level, "sent %s and %r", KEY, {"authorization": f"Bearer {KEY}"})
    text = out.getvalue()
    assert KEY not in text
    assert text.count("sent *** and {'authorization': 'Bearer ***'}") == 5


def test_a_record_from_a_child_logger_is_redacted_by_the_parents_handler(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = captured
    child = log.getChild("aiohttp.client")  # a library logger below the configured one
    child.propagate = True
    child.warning("upstream said %s", KEY)
    assert out.getvalue() == "WARNING mini_llm.redaction-test.aiohttp.client: upstream said ***\n"


def _log_with_a_stack_that_quotes_the_key(log: logging.Logger) -> None:
    # The stack shows this source line, and with it the literal key.
    log.error("with a stack", stack_info=True) if "sk-test-redaction-key-1234567890" else None


def test_traceback_and_stack_are_redacted(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = captured
    try:
        raise ValueError(f"Incorrect API key provided: {KEY}")
    except ValueError:
        log.exception("unhandled error on POST %s", "/v1/chat/completions")
    _log_with_a_stack_that_quotes_the_key(log)
    text = out.getvalue()
    assert KEY not in text
    assert "ValueError: Incorrect API key provided: ***" in text
    assert "Traceback (most recent call last)" in text
    assert "Stack (most recent call last)" in text
    assert 'if "***" else None' in text


def test_the_longest_key_is_masked_whole(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = captured
    log.info("%s", LONGER)
    assert out.getvalue().endswith(": ***\n")


def test_install_puts_one_redactor_on_each_handler() -> None:
    logger = logging.getLogger("mini_llm")
    handler = logging.StreamHandler(io.StringIO())
    logger.addHandler(handler)
    try:
        log_redaction.install([KEY])
        log_redaction.install([LONGER])  # a second install replaces the first, never stacks
        redactors = [f for f in handler.filters if isinstance(f, log_redaction.KeyRedactor)]
        assert len(redactors) == 1
        assert redactors[0].redact(f"{KEY} {LONGER}") == f"{KEY} ***"
    finally:
        logger.removeHandler(handler)


class _Counted:
    """An argument that counts how often it is formatted."""

    def __init__(self) -> None:
        self.formatted = 0

    def __str__(self) -> str:
        self.formatted += 1
        return "counted"


def test_arguments_are_formatted_once_even_when_nothing_is_masked(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, out = captured
    argument = _Counted()
    log.info("no key here: %s", argument)
    assert out.getvalue() == "INFO mini_llm.redaction-test: no key here: counted\n"
    assert argument.formatted == 1


_FROM_LIBRARIES: Final = f"""
logging.getLogger("asyncio").error("Task exception was never retrieved: %s", {KEY!r})
aside = logging.getLogger("aiohttp.client")
aside.propagate = False  # no handler on its way: logging.lastResort writes it
aside.warning("upstream said %s", {KEY!r})
"""
_SERVER_LOG_CONFIG: Final = (
    "import logging.config; from mini_llm.server import LOG_CONFIG; logging.config.dictConfig(LOG_CONFIG)"
)


def _stderr_of(setup: str, logging_calls: str) -> str:
    """stderr of a fresh interpreter that sets logging up, installs the redactor and makes `logging_calls`.

    A fresh process: the root logger and logging.lastResort are process-wide, and pytest's own
    capture handlers raise on a logging error instead of reporting it.
    """
    code = f"import logging\nfrom mini_llm import log_redaction\n{setup}\nlog_redaction.install([{KEY!r}])\n"
    code += logging_calls + "\nprint('caller carried on')\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout == "caller carried on\n"
    return done.stderr


def test_bad_format_arguments_are_reported_by_logging_without_the_key() -> None:
    bad_calls = f"""
log = logging.getLogger("mini_llm.bad")
log.error("key %s, count %d", {KEY!r}, "not a number")
log.error("by name %(key)s %(missing)s", {{"key": {KEY!r}}})
"""
    err = _stderr_of(_SERVER_LOG_CONFIG, bad_calls)
    assert err.count("--- Logging error ---") == 2
    assert "Message: 'key %s, count %d'\nArguments: ('***', 'not a number')" in err
    assert "Arguments: {'key': '***'}" in err
    assert KEY not in err


def test_library_records_are_redacted_with_the_servers_log_config() -> None:
    err = _stderr_of(_SERVER_LOG_CONFIG, _FROM_LIBRARIES)
    assert KEY not in err
    assert " ERROR asyncio: Task exception was never retrieved: ***\n" in err  # the plain format of LOG_CONFIG
    assert "upstream said ***\n" in err


def test_library_records_are_redacted_when_the_asgi_server_configured_no_logging() -> None:
    err = _stderr_of(
        "from mini_llm.gateway.app import log_to_stderr_where_unconfigured; log_to_stderr_where_unconfigured()",
        _FROM_LIBRARIES,
    )
    assert KEY not in err
    assert " ERROR asyncio: Task exception was never retrieved: ***\n" in err
    assert "upstream said ***\n" in err
