"""Stub of the compiled response parser (ext/_http_c.pyx); behaviour is documented in mini_llm.hotpath._http_py."""

from typing import Final

from typing_extensions import disjoint_base

__all__ = ["MAX_CHUNK_LINE", "ResponseParser"]

MAX_CHUNK_LINE: Final[int]

@disjoint_base
class ResponseParser:
    """Incremental parser of one response: bytes in, body pieces out, nothing but lines buffered."""

    def __init__(self, head_request: bool = False, max_head_bytes: int = 65536, max_headers: int = 100) -> None: ...
    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> bytes: ...
    @property
    def headers(self) -> list[tuple[bytes, bytes]]: ...
    @property
    def head_complete(self) -> bool: ...
    @property
    def done(self) -> bool: ...
    @property
    def keep_alive(self) -> bool: ...
    @property
    def trailing(self) -> bool:
        """True once bytes came after the complete answer: they are not read, keep_alive is False."""
    @property
    def content_length(self) -> int: ...
    @property
    def chunked(self) -> bool: ...
    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete line; bounded by max_head_bytes or MAX_CHUNK_LINE."""
    def feed(self, data: bytes) -> list[bytes]:
        """Consume bytes from the socket; return the body pieces they complete, in order."""
    def feed_eof(self) -> list[bytes]:
        """The peer closed: this ends a close-delimited body; anywhere else the answer is cut short."""
