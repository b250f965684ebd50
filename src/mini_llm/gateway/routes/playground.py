"""GET /playground: one static page to try the gateway from a browser, with a hash-pinned CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources

from mini_llm.asgi import Headers
from mini_llm.gateway.context import Context, Request

_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


def _source(tag: bytes, content: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
    return f"{tag.decode()}-src 'sha256-{digest}'"


@cache
def page() -> tuple[bytes, Headers]:
    """The page and its headers, built on first use: the CSP allows exactly its own inline blocks.

    Hashing at load time keeps the policy in step with the file, so an edited page never needs
    'unsafe-inline'; anything injected into it would not match a hash and would not run.
    """
    body = resources.files("mini_llm").joinpath("static/playground.html").read_bytes()
    blocks = _INLINE.findall(body)
    if sorted(tag for tag, _ in blocks) != [b"script", b"style"]:
        raise RuntimeError("playground.html must hold exactly one inline <script> and one <style>")
    policy = "; ".join(
        [
            "default-src 'none'",
            *(_source(tag, content) for tag, content in blocks),
            "connect-src 'self'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers: Headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),
    ]
    return body, headers


async def playground(ctx: Context, req: Request) -> None:
    """Serve the page; HEAD gets the same headers without the body."""
    body, headers = page()
    await req.answer(200, headers, b"" if req.scope["method"] == "HEAD" else body)
