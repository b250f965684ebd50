"""HTTP/1.1 response parsing, compiled vs pure side by side: a typical 1 KiB JSON answer in one read and a
50-event chunked SSE answer, one read per chunk as a provider flushes them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import HotPathImpl
    from pytest_benchmark.fixture import BenchmarkFixture

JSON_BODY = json.dumps(
    {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "The gateway relays the answer. " * 24},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 19, "completion_tokens": 230, "total_tokens": 249},
    },
    separators=(",", ":"),
).encode()

# The head fields OpenAI sends (values shortened), so the field loop does realistic work.
HEAD_FIELDS = (
    b"Date: Tue, 01 Dec 2026 11:00:00 GMT\r\n"
    b"Connection: keep-alive\r\n"
    b"access-control-expose-headers: X-Request-ID\r\n"
    b"openai-organization: org-abc\r\n"
    b"openai-processing-ms: 310\r\n"
    b"openai-version: 2020-10-01\r\n"
    b"x-ratelimit-limit-requests: 10000\r\n"
    b"x-ratelimit-remaining-requests: 9999\r\n"
    b"x-request-id: req_6a1e1c5b0b1f4d2e9c3a\r\n"
    b"strict-transport-security: max-age=31536000; includeSubDomains; preload\r\n"
    b"Server: cloudflare\r\n"
)
JSON_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
    + HEAD_FIELDS
    + b"Content-Length: %d\r\n\r\n" % len(JSON_BODY)
    + JSON_BODY
)


def sse_reads(events: int) -> list[bytes]:
    """The head, then one chunk per SSE event, then the last chunk."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n" + HEAD_FIELDS
    reads = [head + b"Transfer-Encoding: chunked\r\n\r\n"]
    for i in range(events):
        choice = {"index": 0, "delta": {"content": f" token{i}"}, "logprobs": None, "finish_reason": None}
        event = b"data: " + json.dumps({"id": "chatcmpl-1", "choices": [choice]}).encode() + b"\n\n"
        reads.append(b"%x\r\n%s\r\n" % (len(event), event))
    reads.append(b"0\r\n\r\n")
    return reads


SSE_READS = sse_reads(50)
SSE_BODY = sum(len(read.split(b"\r\n", 1)[1]) - 2 for read in SSE_READS[1:-1])


@pytest.mark.benchmark(group="http/json-1KiB")
def test_json_answer(benchmark: BenchmarkFixture, hotpath_impl: HotPathImpl) -> None:
    parser_cls = hotpath_impl.ResponseParser

    def run() -> tuple[int, bool]:
        parser = parser_cls()
        body = sum(map(len, parser.feed(JSON_ANSWER)))
        return body, parser.keep_alive

    assert benchmark(run) == (len(JSON_BODY), True)


@pytest.mark.benchmark(group="http/sse-50-chunks")
def test_chunked_sse_answer(benchmark: BenchmarkFixture, hotpath_impl: HotPathImpl) -> None:
    parser_cls = hotpath_impl.ResponseParser

    def run() -> tuple[int, bool]:
        parser = parser_cls()
        # map() keeps the harness loop in C, so the time is the parser's, not the loop's.
        body = sum(len(piece) for pieces in map(parser.feed, SSE_READS) for piece in pieces)
        return body, parser.keep_alive

    assert benchmark(run) == (SSE_BODY, True)
