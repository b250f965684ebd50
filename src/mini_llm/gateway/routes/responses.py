"""OpenAI's Responses API, passed through (https://platform.openai.com/docs/api-reference/responses).

POST /v1/responses, /v1/responses/input_tokens and /v1/responses/compact are routed by their model, as
chat completions are. The by-id routes (a stored response: retrieve, delete, cancel, its input items) carry no model,
so they go to the provider named `openai` (README, "The Responses API"). Their id and query string
are checked before anything goes upstream: the provider gets exactly the path the client named.
"""

from __future__ import annotations

import re
from typing import Final

from mini_llm.errors import GatewayError, clip
from mini_llm.gateway.context import Context, Request
from mini_llm.gateway.pipeline import forward

PREFIX: Final = "/v1/responses/"
BY_ID_PROVIDER: Final = "openai"
# What follows the id in each by-id path, and the methods it is served with.
BY_ID_METHODS: Final[dict[str, tuple[str, ...]]] = {
    "": ("GET", "DELETE"),
    "/cancel": ("POST",),
    "/input_items": ("GET",),
}
# OpenAI's ids are `resp_` and letters and digits; this admits any id made of RFC 3986 unreserved
# characters but `.` and `~`, so no id can be a dot segment or need encoding.
_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,200}")
# RFC 3986 3.4: a query of pchar, "/" and "?", each "%" starting an escape; the brackets too, which
# clients send unescaped in array parameters (`include[]=...`). No space, control byte or "#" passes.
_QUERY: Final = re.compile(rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?\[\]]|%[0-9A-Fa-f]{2})*")
QUERY_LIMIT: Final = 2048
_STREAM: Final = re.compile(rb"(?:^|&)stream=true(?:&|$)")


async def create(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/responses", events="responses")


async def compact(ctx: Context, req: Request) -> None:
    await forward(ctx, req, "/responses/compact")


async def input_tokens(ctx: Context, req: Request) -> None:
    # `model` is optional here (a stored conversation or previous response can say it): without one, OpenAI.
    await forward(ctx, req, "/responses/input_tokens", model_required=False)


def split(path: str) -> tuple[str, str] | None:
    """(id, tail) of a path shaped like a by-id route (the id not checked yet); None for any other path."""
    if not path.startswith(PREFIX):
        return None
    response_id, slash, action = path[len(PREFIX) :].partition("/")
    tail = slash + action
    if not response_id or tail not in BY_ID_METHODS:
        return None
    return response_id, tail


def route_label(tail: str) -> str:
    """The by-id route's template, the metrics' route label: `/v1/responses/{id}/cancel`."""
    return PREFIX + "{id}" + tail


async def by_id(ctx: Context, req: Request) -> None:
    """Any by-id route: the path and query as the client sent them, to the `openai` provider, with its method."""
    parts = split(req.path)
    assert parts is not None, "the app routes only by-id paths here"
    response_id, tail = parts
    raw_path = req.scope.get("raw_path")
    # The path is percent-decoded: an id sent as `a%2Fcancel` must not become the cancel route of `a`.
    if not _ID.fullmatch(response_id) or (raw_path is not None and raw_path != req.path.encode()):
        raise GatewayError(
            404,
            f"no response has the id {clip(response_id)}: an id is 1 to 200 letters, digits, '_' or '-', "
            "sent without percent-encoding",
            code="not_found",
        )
    query: bytes = req.scope.get("query_string", b"")
    if len(query) > QUERY_LIMIT or not _QUERY.fullmatch(query):
        raise GatewayError(
            400,
            f"the query string is not valid: at most {QUERY_LIMIT} bytes of RFC 3986 query characters",
            code="invalid_query",
        )
    upstream_path = f"/responses/{response_id}{tail}"
    if query:
        upstream_path += "?" + query.decode("ascii")
    # GET /v1/responses/{id}?stream=true replays a stored response's events: relayed as a stream.
    stream = tail == "" and _STREAM.search(query) is not None
    await forward(ctx, req, upstream_path, events="responses", provider=BY_ID_PROVIDER, stream=stream)
