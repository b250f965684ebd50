"""The stream observer reads usage and endings on the side and never raises."""

from __future__ import annotations

from mini_llm.hotpath import SSEEvent
from mini_llm.relay import StreamObserver


def _event(data: str, name: str = "message") -> SSEEvent:
    return SSEEvent(name, data, "", b"")


def test_openai_usage_done_and_first_token() -> None:
    observer = StreamObserver("openai")
    observer.observe(_event('{"choices":[{"delta":{"role":"assistant","content":""}}]}'))
    first_tokens = [observer.first_token]
    observer.observe(_event('{"choices":[{"delta":{"content":"Hi"}}]}'))
    first_tokens.append(observer.first_token)
    assert first_tokens[0] is None and first_tokens[1] is not None
    observer.observe(_event('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}'))
    observer.observe(_event("[DONE]"))
    assert observer.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert observer.done and not observer.error
    assert "usage=prompt_tokens=3,completion_tokens=2,total_tokens=5" in observer.log_fields()
    assert observer.log_fields().endswith("malformed=0 end=done")


def test_anthropic_usage_and_error() -> None:
    observer = StreamObserver("anthropic")
    observer.observe(_event('{"type":"message_start","message":{"usage":{"input_tokens":9}}}', "message_start"))
    observer.observe(_event('{"type":"content_block_delta"}', "content_block_delta"))
    observer.observe(_event('{"type":"message_delta","usage":{"output_tokens":4}}', "message_delta"))
    observer.observe(_event('{"type":"error","error":{"type":"overloaded_error"}}', "error"))
    assert observer.usage == {"input_tokens": 9, "output_tokens": 4}
    assert observer.first_token is not None
    assert observer.error and observer.log_fields().endswith("end=error")


def test_malformed_events_are_counted_not_raised() -> None:
    openai_observer = StreamObserver("openai")
    openai_observer.observe(_event('{"usage":{"a":1}, broken'))
    openai_observer.observe(_event('{"usage":{"a":1}} trailing'))
    anthropic_observer = StreamObserver("anthropic")
    anthropic_observer.observe(_event('{"type":"message_start"}', "message_start"))
    anthropic_observer.observe(_event('{"type":"message_start","message":[]}', "message_start"))
    anthropic_observer.observe(_event("not json", "message_delta"))
    assert (openai_observer.malformed, openai_observer.events) == (2, 2)
    assert (anthropic_observer.malformed, anthropic_observer.events) == (3, 3)
