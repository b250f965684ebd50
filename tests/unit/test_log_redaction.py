"""The log redactor on real loggers: no key in a message, its arguments, a traceback or a stack."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

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
